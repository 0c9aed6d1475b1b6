package pci_test

import (
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

// nopPorts is a PortIO that does nothing, to measure Mechanism1 itself.
type nopPorts struct{}

func (nopPorts) In8(uint16) uint8     { return 0 }
func (nopPorts) In16(uint16) uint16   { return 0 }
func (nopPorts) In32(uint16) uint32   { return 0 }
func (nopPorts) Out8(uint16, uint8)   {}
func (nopPorts) Out16(uint16, uint16) {}
func (nopPorts) Out32(uint16, uint32) {}
func BenchmarkMechanism1Read32(b *testing.B) {
	m := pci.NewMechanism1(nopPorts{})
	a := pci.Address{Bus: 1, Device: 2}
	b.ReportAllocs()
	for b.Loop() {
		m.Read32(a, 0x10)
	}
}

func BenchmarkEnumerateFakeMachine(b *testing.B) {
	m := pcitest.NewMachine()
	m.AddSpec(addr(0, 0, 0), hostBridge)
	m.AddSpec(addr(0, 30, 0), bridge(0, 1, 1))
	for i := uint8(1); i < 8; i++ {
		m.AddSpec(addr(0, i, 0), nic)
		m.AddSpec(addr(1, i, 0), nic)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pci.Enumerate(m); err != nil {
			b.Fatal(err)
		}
	}
}
