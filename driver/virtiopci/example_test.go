package virtiopci_test

import (
	"fmt"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci"
)

// The bring-up a driver does: enumerate, probe for network devices, open
// the transport, negotiate, take interrupts, set up queues, DRIVER_OK. On
// bare metal the machine (PortIO, Mapper, MSIAllocator, LineInterrupter)
// is the runtime; here it is the fake used by this package's tests.
func ExampleOpen() {
	dev := newFakeDev(v1|featMAC|featMRG, netConfig(), 256, 256)
	fm := newFakeMachine(layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}, dev)
	msi := &fakeMSI{}
	platform := virtiopci.Platform{IO: fm.m, Mapper: fm.m, MSI: msi, Lines: &fakeLines{}}

	devs, _ := pci.Enumerate(pci.NewMechanism1(platform.IO))
	for _, d := range virtiopci.Probe(devs, virtiopci.TypeNet) {
		t, err := virtiopci.Open(d, platform, virtiopci.Options{})
		if err != nil {
			fmt.Println(err)
			continue
		}
		features, err := virtio.Negotiate(t, v1|featMAC, ^uint64(0))
		if err != nil {
			fmt.Println(err)
			continue
		}
		mac := make([]byte, 6)
		t.ReadConfig(0, mac)
		queues, _, err := t.Interrupts(2)
		if err != nil {
			fmt.Println(err)
			continue
		}
		for q := range queues {
			desc, avail, used := legacyRing(256, 0x100000+uint64(q)<<16)
			if err := t.SetupQueue(q, 256, desc, avail, used); err != nil {
				fmt.Println(err)
			}
		}
		if err := virtio.DriverOK(t); err != nil {
			fmt.Println(err)
		}
		fmt.Printf("%v legacy=%v features=%#x mac=% x interrupts=%s\n", d, t.Legacy(), features, mac, t.InterruptMode())
	}
	// Output:
	// 00:03.0 1af4:1041 legacy=false features=0x100000020 mac=52 54 00 12 34 56 interrupts=msix
}
