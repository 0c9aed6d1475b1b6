package pci_test

import (
	"errors"
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

// capMachine returns a machine with one function at 00:01.0 carrying caps.
func capMachine(caps ...pcitest.Cap) (*pcitest.Machine, *pcitest.Function, *pci.Device) {
	m := pcitest.NewMachine()
	f := m.AddSpec(addr(0, 1, 0), pcitest.Spec{VendorID: 1, DeviceID: 2, Caps: caps})
	d, err := pci.Open(m, addr(0, 1, 0))
	if err != nil {
		panic(err)
	}
	return m, f, d
}

func vendorCap(body ...byte) pcitest.Cap {
	// The length byte counts the ID and next pointer too.
	return pcitest.Cap{ID: pci.CapVendorSpecific, Body: append([]byte{byte(len(body) + 3)}, body...)}
}

func TestCapabilitiesWalk(t *testing.T) {
	_, f, d := capMachine(pcitest.MSICap(true, false, 0), vendorCap(1, 2, 3, 4, 5), pcitest.MSIXCap(4, 1, 0, 1, 0x800))
	caps, err := d.Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	want := []pci.Capability{
		{ID: pci.CapMSI, Offset: f.CapOffset(0)},
		{ID: pci.CapVendorSpecific, Offset: f.CapOffset(1)},
		{ID: pci.CapMSIX, Offset: f.CapOffset(2)},
	}
	if len(caps) != len(want) {
		t.Fatalf("caps = %+v, want %+v", caps, want)
	}
	for i := range caps {
		if caps[i] != want[i] {
			t.Errorf("cap %d = %+v, want %+v", i, caps[i], want[i])
		}
	}
	c, err := d.FindCapability(pci.CapMSIX)
	if err != nil || c != want[2] {
		t.Errorf("FindCapability(MSI-X) = %+v, %v", c, err)
	}
	if _, err := d.FindCapability(pci.CapPCIExpress); !errors.Is(err, pci.ErrNoCapability) {
		t.Errorf("FindCapability(PCIe) err = %v, want ErrNoCapability", err)
	}
}

func TestCapabilitiesBadLists(t *testing.T) {
	tests := []struct {
		name string
		// corrupt damages the three-entry list at offsets 0x40, 0x44, 0x48.
		corrupt func(f *pcitest.Function)
		want    error
		entries int // entries returned with the error
	}{
		{"last entry points back to the first", func(f *pcitest.Function) { f.Poke8(0x49, 0x40) }, pci.ErrCapabilityLoop, 3},
		{"entry points at itself", func(f *pcitest.Function) { f.Poke8(0x45, 0x44) }, pci.ErrCapabilityLoop, 2},
		{"pointer into the header", func(f *pcitest.Function) { f.Poke8(0x41, 0x10) }, pci.ErrBadCapabilityPointer, 1},
		{"first pointer into the header", func(f *pcitest.Function) { f.Poke8(0x34, 0x3C) }, pci.ErrBadCapabilityPointer, 0},
		{"function gone: entries read all ones", func(f *pcitest.Function) { f.Poke16(0x44, 0xFFFF) }, pci.ErrAllOnes, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps := []pcitest.Cap{{ID: 0x01, Body: []byte{0, 0}}, {ID: 0x05, Body: []byte{0, 0}}, {ID: 0x11, Body: []byte{0, 0}}}
			_, f, d := capMachine(caps...)
			if f.CapOffset(2) != 0x48 {
				t.Fatalf("layout changed: cap 2 at %#x", f.CapOffset(2))
			}
			tt.corrupt(f)
			got, err := d.Capabilities()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(got) != tt.entries {
				t.Errorf("%d entries returned with the error, want %d", len(got), tt.entries)
			}
		})
	}
}

func TestCapabilitiesPointerLowBitsMasked(t *testing.T) {
	_, f, d := capMachine(pcitest.Cap{ID: 0x01, Body: []byte{0, 0}}, pcitest.Cap{ID: 0x05, Body: []byte{0, 0}})
	f.Poke8(0x34, 0x43)
	f.Poke8(0x41, 0x47)
	caps, err := d.Capabilities()
	if err != nil || len(caps) != 2 || caps[0].Offset != 0x40 || caps[1].Offset != 0x44 {
		t.Fatalf("caps = %+v, %v", caps, err)
	}
}

func TestCapabilitiesAbsent(t *testing.T) {
	m, _, d := capMachine()
	caps, err := d.Capabilities()
	if err != nil || len(caps) != 0 {
		t.Fatalf("caps = %+v, %v; want none", caps, err)
	}
	m.Remove(addr(0, 1, 0))
	if _, err := d.Capabilities(); !errors.Is(err, pci.ErrAllOnes) {
		t.Fatalf("removed function: err = %v, want ErrAllOnes", err)
	}
}

func TestVendorCapabilities(t *testing.T) {
	_, f, d := capMachine(vendorCap(0xAA, 0xBB, 0x01, 0x02, 0x03, 0x04), pcitest.MSICap(false, false, 0), vendorCap(7))
	vcs, err := d.VendorCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	if len(vcs) != 2 || vcs[0].Offset != f.CapOffset(0) || vcs[0].Len != 9 || vcs[1].Len != 4 {
		t.Fatalf("vendor caps = %+v", vcs)
	}
	if v, err := vcs[0].Read8(d, 3); err != nil || v != 0xAA {
		t.Errorf("Read8(3) = %#x, %v", v, err)
	}
	if v, err := vcs[0].Read16(d, 3); err != nil || v != 0xBBAA {
		t.Errorf("Read16(3) = %#x, %v", v, err)
	}
	if v, err := vcs[0].Read32(d, 5); err != nil || v != 0x04030201 {
		t.Errorf("Read32(5) = %#x, %v", v, err)
	}
	if _, err := vcs[0].Read32(d, 6); !errors.Is(err, pci.ErrOutOfRange) {
		t.Errorf("Read32 past the length: err = %v, want ErrOutOfRange", err)
	}
	if _, err := vcs[1].Read8(d, 4); !errors.Is(err, pci.ErrOutOfRange) {
		t.Errorf("Read8 past the length: err = %v, want ErrOutOfRange", err)
	}
}

func TestVendorCapabilityBadLength(t *testing.T) {
	for _, n := range []uint8{0, 2, 0xFF} {
		_, f, d := capMachine(vendorCap(1, 2))
		f.Poke8(f.CapOffset(0)+2, n)
		if _, err := d.VendorCapabilities(); !errors.Is(err, pci.ErrBadCapability) {
			t.Errorf("length %d: err = %v, want ErrBadCapability", n, err)
		}
	}
}
