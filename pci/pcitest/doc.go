// Package pcitest is a fake PCI machine for tests: a table of functions
// (devices and PCI-to-PCI bridges) with emulated configuration space, BAR
// sizing, capability lists, MSI-X tables, and register regions behind BARs.
//
// A Machine implements pci.ConfigSpace directly, pci.PortIO (ports
// 0xCF8/0xCFC run configuration mechanism #1, I/O BARs reach their
// regions) and pci.Mapper (memory BARs reach their regions), so the same
// fake serves tests of package pci and of drivers built on it.
//
// Register regions behind BARs are Region values: Memory for plain
// storage, MSIXTable for an MSI-X table and pending bit array that can
// fire messages, Mux to lay several regions out in one BAR, and any type a
// test writes for device registers with side effects.
//
// Bad configuration data is made with the Poke methods and BAR overrides,
// which bypass the emulation.
package pcitest
