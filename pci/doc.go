// Package pci reaches PCI functions through their configuration space:
// enumeration of every bus behind PCI-to-PCI bridges, BAR decoding and
// sizing, the capability list (vendor-specific capabilities, MSI, MSI-X),
// MSI-X table programming and the command register enables (I/O and memory
// decoding, bus mastering, INTx disable).
//
// The package knows nothing of the machine. It reaches hardware through
// three small interfaces that the platform provides:
//
//   - ConfigSpace: 32-bit reads and writes of a function's configuration
//     space. Mechanism1 implements it over the legacy configuration
//     mechanism #1 (ports 0xCF8/0xCFC) given a PortIO; ECAM over the PCI
//     Express memory-mapped window (base and buses from ACPI MCFG) given a
//     Mapper.
//   - PortIO: x86 IN/OUT instructions on 16-bit port numbers.
//   - Mapper: maps a physical range of memory-mapped registers and returns
//     an MMIO accessor for it.
//
// On bare metal the runtime implements PortIO and Mapper; in tests the
// fake machine in package pcitest does, so everything here runs under
// go test.
//
// Everything read from configuration space is treated as untrusted: a
// capability list that loops or points outside the header, a BAR that does
// not fit its address space, or a register that reads all ones (the
// function went away) is reported as an error, never a panic or a hang.
//
// References: PCI Local Bus Specification 3.0 (§6.1 header, §6.2.5 BARs,
// §6.7 capabilities, §6.8 MSI and MSI-X), PCI-to-PCI Bridge Architecture
// Specification 1.2 (§3.2 type 1 header).
package pci
