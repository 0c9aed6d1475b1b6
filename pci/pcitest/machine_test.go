package pcitest_test

import (
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

func TestMachinePortsRunMechanism1(t *testing.T) {
	m := pcitest.NewMachine()
	f := m.AddSpec(pci.Address{Bus: 2, Device: 5, Function: 1}, pcitest.Spec{VendorID: 0x1234, DeviceID: 0x5678})
	m.Out32(0xCF8, 0x80000000|2<<16|5<<11|1<<8|0x04)
	m.Out16(0xCFC, 0x0006)
	m.Out8(0xCFD, 0x04) // command byte 1 alone: INTx disable
	if got := f.Peek16(4); got != 0x0406 {
		t.Fatalf("command = %#x, want 0x406", got)
	}
	m.Out32(0xCF8, 0x80000000|2<<16|5<<11|1<<8)
	if got := m.In16(0xCFE); got != 0x5678 {
		t.Fatalf("device ID through port 0xCFE = %#x", got)
	}
	m.Out32(0xCF8, 0x00000000) // enable bit clear: no config cycle
	if got := m.In32(0xCFC); got != 0xFFFFFFFF {
		t.Fatalf("read without the enable bit = %#x", got)
	}
}

func TestMachineRoutesBARAccessesOnlyWhileDecoding(t *testing.T) {
	mem := pcitest.NewMemory(0x100)
	m := pcitest.NewMachine()
	f := m.AddSpec(pci.Address{Device: 1}, pcitest.Spec{VendorID: 1, DeviceID: 2,
		BARs: []pcitest.BAR{{Kind: pci.BARMem32, Size: 0x100, Addr: 0xFEB00000, Region: mem}}})
	r, err := m.MapMMIO(0xFEB00010, 0x10)
	if err != nil {
		t.Fatal(err)
	}
	r.Write32(0, 1) // memory decoding off: goes nowhere
	if len(m.Faults()) != 1 || mem.Read(0x10, 4) != 0 {
		t.Fatalf("write with decoding off: faults %q", m.Faults())
	}
	f.Poke16(4, uint16(pci.CommandMemory))
	r.Write32(0, 7)
	if mem.Read(0x10, 4) != 7 || r.Read32(0) != 7 {
		t.Fatal("write with decoding on did not land")
	}
	r.Read32(0x10) // past the mapping
	if len(m.Faults()) != 2 {
		t.Fatalf("access past the mapping not recorded: %q", m.Faults())
	}
	if _, err := m.MapMMIO(0xFEB000F0, 0x20); err == nil {
		t.Fatal("MapMMIO across the end of a BAR succeeded")
	}
}
