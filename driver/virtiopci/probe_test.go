package virtiopci_test

import (
	"slices"
	"testing"

	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

func TestDeviceTypeAndProbe(t *testing.T) {
	m := pcitest.NewMachine()
	specs := []struct {
		dev      uint8
		spec     pcitest.Spec
		wantType uint16
		virtio   bool
	}{
		{1, pcitest.Spec{VendorID: 0x8086, DeviceID: 0x1000}, 0, false},
		{2, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1000, SubsystemID: 1}, 1, true},
		{3, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1041}, 1, true},
		{4, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1042}, 2, true},
		{5, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1001, SubsystemID: 2}, 2, true},
		{6, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x1110}, 0, false}, // ivshmem, not virtio
		{7, pcitest.Spec{VendorID: 0x1AF4, DeviceID: 0x103F, SubsystemID: 1}, 1, true},
	}
	for _, s := range specs {
		m.AddSpec(pci.Address{Device: s.dev}, s.spec)
	}
	devs, err := pci.Enumerate(m)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		typ, ok := virtiopci.DeviceType(d)
		if ok != specs[i].virtio || typ != specs[i].wantType {
			t.Errorf("%v: DeviceType = %d, %v; want %d, %v", d, typ, ok, specs[i].wantType, specs[i].virtio)
		}
	}
	var got []uint8
	for _, d := range virtiopci.Probe(devs, virtiopci.TypeNet) {
		got = append(got, d.Addr.Device)
	}
	if want := []uint8{2, 3, 7}; !slices.Equal(got, want) {
		t.Errorf("Probe(net) found devices %v, want %v", got, want)
	}
}
