package pci_test

import (
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

// portLog is a PortIO that records CONFIG_ADDRESS writes and answers every
// read with a fixed value.
type portLog struct {
	// addrs are the values written to port 0xCF8.
	addrs []uint32
	// reads are the ports read.
	reads []uint16
}

func (p *portLog) In8(port uint16) uint8   { p.reads = append(p.reads, port); return 0x11 }
func (p *portLog) In16(port uint16) uint16 { p.reads = append(p.reads, port); return 0x2222 }
func (p *portLog) In32(port uint16) uint32 { p.reads = append(p.reads, port); return 0x33333333 }
func (p *portLog) Out8(uint16, uint8)      {}
func (p *portLog) Out16(uint16, uint16)    {}
func (p *portLog) Out32(port uint16, v uint32) {
	if port == 0xCF8 {
		p.addrs = append(p.addrs, v)
	}
}

func TestMechanism1AddressEncoding(t *testing.T) {
	tests := []struct {
		name string
		a    pci.Address
		off  uint16
		want uint32
	}{
		{"vendor of 00:00.0", pci.Address{}, 0x00, 0x80000000},
		{"bus device function and offset fields", pci.Address{Bus: 0x12, Device: 0x1F, Function: 7}, 0x3C, 0x80000000 | 0x12<<16 | 0x1F<<11 | 7<<8 | 0x3C},
		{"low offset bits dropped from the address", pci.Address{Bus: 1, Device: 2, Function: 3}, 0x0E, 0x80000000 | 1<<16 | 2<<11 | 3<<8 | 0x0C},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &portLog{}
			m := pci.NewMechanism1(p)
			m.Read32(tt.a, tt.off)
			if len(p.addrs) != 1 || p.addrs[0] != tt.want {
				t.Fatalf("CONFIG_ADDRESS writes %#x, want [%#x]", p.addrs, tt.want)
			}
		})
	}
}

func TestMechanism1NarrowAccessUsesDataPortLane(t *testing.T) {
	p := &portLog{}
	m := pci.NewMechanism1(p)
	a := pci.Address{}
	m.Read8(a, 0x0E)
	m.Read16(a, 0x06)
	m.Read32(a, 0x08)
	want := []uint16{0xCFE, 0xCFE, 0xCFC}
	for i, w := range want {
		if p.reads[i] != w {
			t.Errorf("read %d on port %#x, want %#x", i, p.reads[i], w)
		}
	}
}

func TestMechanism1UnreachableOffsetsReadAllOnes(t *testing.T) {
	p := &portLog{}
	m := pci.NewMechanism1(p)
	a := pci.Address{}
	if v := m.Read32(a, 0x100); v != 0xFFFFFFFF {
		t.Errorf("Read32(0x100) = %#x, want all ones", v)
	}
	if v := m.Read32(pci.Address{Device: 32}, 0); v != 0xFFFFFFFF {
		t.Errorf("Read32 of device 32 = %#x, want all ones", v)
	}
	m.Write32(a, 0x200, 1)
	if len(p.addrs) != 0 {
		t.Errorf("out-of-range accesses reached the ports: %#x", p.addrs)
	}
}

func TestMechanism1OverFakeMachineMatchesConfigSpace(t *testing.T) {
	m := pcitest.NewMachine()
	a := pci.Address{Bus: 0, Device: 3}
	f := m.AddSpec(a, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1000, Class: 2, SubsystemID: 1})
	mech := pci.NewMechanism1(m)
	if v := mech.Read32(a, 0); v != 0x10001AF4 {
		t.Fatalf("Read32(0) = %#x", v)
	}
	if v := mech.Read16(a, 2); v != 0x1000 {
		t.Fatalf("Read16(2) = %#x", v)
	}
	if v := mech.Read8(a, 0x0B); v != 2 {
		t.Fatalf("Read8(class) = %#x", v)
	}
	mech.Write16(a, 4, pci.CommandBusMaster|pci.CommandIO)
	if v := f.Peek16(4); v != pci.CommandBusMaster|pci.CommandIO {
		t.Fatalf("command = %#x after Write16", v)
	}
	mech.Write8(a, 0x3C, 11)
	if v := mech.Read8(a, 0x3C); v != 11 {
		t.Fatalf("interrupt line = %d after Write8", v)
	}
	if v := mech.Read32(pci.Address{Device: 4}, 0); v != 0xFFFFFFFF {
		t.Fatalf("absent function reads %#x", v)
	}
}

// dwordOnly hides the narrow methods of a config space so that the
// read-modify-write fallback is used, and records dword writes.
type dwordOnly struct {
	// cs is the wrapped space.
	cs pci.ConfigSpace
	// writes are the (offset, value) pairs written.
	writes [][2]uint32
}

func (d *dwordOnly) Read32(a pci.Address, off uint16) uint32 { return d.cs.Read32(a, off) }
func (d *dwordOnly) Write32(a pci.Address, off uint16, v uint32) {
	d.writes = append(d.writes, [2]uint32{uint32(off), v})
	d.cs.Write32(a, off, v)
}

func TestCommandWriteDoesNotWriteBackStatusBits(t *testing.T) {
	m := pcitest.NewMachine()
	a := pci.Address{Device: 1}
	f := m.AddSpec(a, pcitest.Spec{VendorID: 0x8086, DeviceID: 0x1234})
	// Error bits set in status: write-one-to-clear on real hardware.
	f.Poke16(6, 0xF900)
	cs := &dwordOnly{cs: m}
	d, err := pci.Open(cs, a)
	if err != nil {
		t.Fatal(err)
	}
	d.EnableBusMaster()
	if len(cs.writes) != 1 || cs.writes[0][0] != 4 || cs.writes[0][1]>>16 != 0 {
		t.Fatalf("dword writes %#x: the status half must be written as zero", cs.writes)
	}
	if d.Command()&pci.CommandBusMaster == 0 {
		t.Fatal("bus master not enabled")
	}
}
