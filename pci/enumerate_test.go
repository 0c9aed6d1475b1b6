package pci_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

func addr(bus, dev, fn uint8) pci.Address { return pci.Address{Bus: bus, Device: dev, Function: fn} }

// topology is a machine layout for enumeration tests: functions by address.
type topology map[pci.Address]pcitest.Spec

func (tp topology) machine() *pcitest.Machine {
	m := pcitest.NewMachine()
	for a, s := range tp {
		m.AddSpec(a, s)
	}
	return m
}

var (
	hostBridge = pcitest.Spec{VendorID: 0x8086, DeviceID: 0x29C0, Class: 6}
	nic        = pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1041, Class: 2}
)

func bridge(primary, secondary, subordinate uint8) pcitest.Spec {
	return pcitest.Spec{VendorID: 0x1B36, DeviceID: 0x0001, Class: 6, Subclass: 4, Bridge: true,
		Primary: primary, Secondary: secondary, Subordinate: subordinate}
}

func TestEnumerate(t *testing.T) {
	multi := nic
	multi.MultiFunction = true
	tests := []struct {
		name    string
		topo    topology
		want    []pci.Address
		wantErr error
	}{
		{
			name: "root bus devices in slot order",
			topo: topology{addr(0, 0, 0): hostBridge, addr(0, 3, 0): nic, addr(0, 2, 0): nic},
			want: []pci.Address{addr(0, 0, 0), addr(0, 2, 0), addr(0, 3, 0)},
		},
		{
			name: "functions of a multi-function device",
			topo: topology{addr(0, 4, 0): multi, addr(0, 4, 3): nic, addr(0, 4, 7): nic},
			want: []pci.Address{addr(0, 4, 0), addr(0, 4, 3), addr(0, 4, 7)},
		},
		{
			name: "functions other than 0 ignored on a single-function device",
			topo: topology{addr(0, 4, 0): nic, addr(0, 4, 3): nic},
			want: []pci.Address{addr(0, 4, 0)},
		},
		{
			name: "devices behind nested bridges, bridge first",
			topo: topology{
				addr(0, 0, 0): hostBridge, addr(0, 30, 0): bridge(0, 1, 2),
				addr(1, 0, 0): nic, addr(1, 1, 0): bridge(1, 2, 2), addr(2, 5, 0): nic,
				addr(0, 31, 0): nic,
			},
			want: []pci.Address{addr(0, 0, 0), addr(0, 30, 0), addr(1, 0, 0), addr(1, 1, 0), addr(2, 5, 0), addr(0, 31, 0)},
		},
		{
			name:    "bridge pointing back at its own bus is an error, not a loop",
			topo:    topology{addr(0, 1, 0): bridge(0, 0x0, 0), addr(0, 2, 0): bridge(0, 1, 1), addr(1, 0, 0): bridge(1, 1, 1)},
			want:    []pci.Address{addr(0, 1, 0), addr(0, 2, 0), addr(1, 0, 0)},
			wantErr: pci.ErrBadBridge,
		},
		{
			name:    "two bridges claiming the same bus: second is an error",
			topo:    topology{addr(0, 1, 0): bridge(0, 1, 1), addr(0, 2, 0): bridge(0, 1, 1), addr(1, 0, 0): nic},
			want:    []pci.Address{addr(0, 1, 0), addr(1, 0, 0), addr(0, 2, 0)},
			wantErr: pci.ErrBadBridge,
		},
		{
			name:    "subordinate below secondary is an error",
			topo:    topology{addr(0, 1, 0): bridge(0, 3, 2), addr(3, 0, 0): nic},
			want:    []pci.Address{addr(0, 1, 0)},
			wantErr: pci.ErrBadBridge,
		},
	}
	for _, tt := range tests {
		for _, via := range []string{"direct", "mechanism1"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				var cs pci.ConfigSpace = tt.topo.machine()
				if via == "mechanism1" {
					cs = pci.NewMechanism1(cs.(*pcitest.Machine))
				}
				devs, err := pci.Enumerate(cs)
				var got []pci.Address
				for _, d := range devs {
					got = append(got, d.Addr)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("found %v, want %v", got, tt.want)
				}
				if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
}

func TestEnumerateUnknownHeaderTypeIsReportedAndNotWalked(t *testing.T) {
	m := pcitest.NewMachine()
	f := m.AddSpec(addr(0, 1, 0), nic)
	f.Poke8(0x0E, 0x05)
	devs, err := pci.Enumerate(m)
	if !errors.Is(err, pci.ErrBadHeader) {
		t.Fatalf("err = %v, want ErrBadHeader", err)
	}
	if len(devs) != 1 {
		t.Fatalf("found %d devices, want 1", len(devs))
	}
}

func TestOpenReadsIdentification(t *testing.T) {
	m := pcitest.NewMachine()
	m.AddSpec(addr(0, 3, 0), pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1000, Class: 2, Subclass: 0, Revision: 1,
		SubsystemVendorID: 0x1AF4, SubsystemID: 1, InterruptLine: 11, InterruptPin: 1})
	d, err := pci.Open(m, addr(0, 3, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := pci.Device{Config: m, Addr: addr(0, 3, 0), VendorID: 0x1AF4, DeviceID: 0x1000, Class: 2, Revision: 1,
		SubsystemVendorID: 0x1AF4, SubsystemID: 1, InterruptLine: 11, InterruptPin: 1}
	if *d != want {
		t.Fatalf("Open = %+v\nwant %+v", *d, want)
	}
	if s := d.String(); s != "00:03.0 1af4:1000" {
		t.Errorf("String = %q", s)
	}
	if _, err := pci.Open(m, addr(0, 4, 0)); !errors.Is(err, pci.ErrNoDevice) {
		t.Errorf("Open of an empty slot: err = %v, want ErrNoDevice", err)
	}
}

// vanishing is a config space where one function disappears after its
// first vendor read: a surprise removal during enumeration.
type vanishing struct {
	// Machine is the machine underneath.
	*pcitest.Machine
	// gone is the function that vanishes.
	gone pci.Address
	// reads counts vendor reads of gone.
	reads int
}

func (v *vanishing) Read32(a pci.Address, off uint16) uint32 {
	if a == v.gone && off == 0 {
		v.reads++
		if v.reads > 1 {
			return 0xFFFFFFFF
		}
	}
	return v.Machine.Read32(a, off)
}

func TestEnumerateFunctionVanishingMidWalkIsAnError(t *testing.T) {
	m := topology{addr(0, 1, 0): nic, addr(0, 2, 0): nic}.machine()
	devs, err := pci.Enumerate(&vanishing{Machine: m, gone: addr(0, 1, 0)})
	if !errors.Is(err, pci.ErrNoDevice) {
		t.Fatalf("err = %v, want ErrNoDevice", err)
	}
	if len(devs) != 1 || devs[0].Addr != addr(0, 2, 0) {
		t.Fatalf("found %v", devs)
	}
}
