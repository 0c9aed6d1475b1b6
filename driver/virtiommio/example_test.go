package virtiommio

import (
	"fmt"

	"github.com/govirtio/govirtio/driver/virtio"
)

// The bring-up a driver does: read the devices from the command line, open
// each, keep the network device, negotiate, take interrupts, set up
// queues, DRIVER_OK. On bare metal the Platform is the runtime's register
// mappings and I/O APIC lines; here it is the fake the tests use.
func ExampleOpen() {
	fake := newFake(versionModern)
	copy(fake.config, []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56})
	platform := Platform{Mapper: &fakeMapper{dev: fake}, Lines: &fakeLines{line: &fakeLine{fire: make(chan struct{})}}}

	devs, _ := DevicesFromArgs([]string{"console=ttyS0", "virtio_mmio.device=512@0xfeb00e00:12"})
	for _, d := range devs {
		t, err := Open(d, platform, Options{})
		if err != nil || t.DeviceID() != 1 {
			continue
		}
		features, err := virtio.Negotiate(t, 1<<32|1<<5, ^uint64(0))
		if err != nil {
			fmt.Println(err)
			continue
		}
		mac := make([]byte, 6)
		t.ReadConfig(0, mac)
		if _, _, err := t.Interrupts(2); err != nil {
			fmt.Println(err)
			continue
		}
		for q := range 2 {
			base := 0x100000 + uint64(q)<<16
			if err := t.SetupQueue(q, 256, base, base+0x1000, base+0x2000); err != nil {
				fmt.Println(err)
			}
		}
		if err := virtio.DriverOK(t); err != nil {
			fmt.Println(err)
		}
		fmt.Printf("%v version %d features %#x mac % x\n", d, t.Version(), features, mac)
	}
	// Output:
	// mmio 0xfeb00e00+0x200 irq 12 version 2 features 0x100000020 mac 52 54 00 12 34 56
}
