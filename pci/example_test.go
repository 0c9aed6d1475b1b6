package pci_test

import (
	"fmt"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

// Enumerate the machine through configuration mechanism #1, then size the
// BARs and walk the capabilities of what was found. On bare metal the
// PortIO is the runtime's IN/OUT implementation; here it is a fake machine.
func ExampleEnumerate() {
	m := pcitest.NewMachine()
	m.AddSpec(pci.Address{Device: 3}, pcitest.Spec{
		VendorID: 0x1AF4, DeviceID: 0x1041, Class: 2,
		BARs: []pcitest.BAR{{}, {Kind: pci.BARMem32, Size: 0x1000, Addr: 0xFEBD1000},
			{}, {}, {Kind: pci.BARMem64, Size: 0x4000, Addr: 0xFE000000, Prefetchable: true}},
		Caps: []pcitest.Cap{pcitest.MSIXCap(3, 1, 0, 1, 0x800)},
	})
	devs, err := pci.Enumerate(pci.NewMechanism1(m))
	if err != nil {
		fmt.Println(err)
	}
	for _, d := range devs {
		fmt.Println(d)
		bars, _ := d.BARs()
		for _, b := range bars {
			fmt.Printf("  BAR%d %v %#x+%#x prefetchable=%v\n", b.Index, b.Kind, b.Addr, b.Size, b.Prefetchable)
		}
		if x, err := d.MSIX(); err == nil {
			fmt.Printf("  MSI-X %d vectors, table in BAR%d at %#x\n", x.TableSize, x.TableBIR, x.TableOffset)
		}
	}
	// Output:
	// 00:03.0 1af4:1041
	//   BAR1 mem32 0xfebd1000+0x1000 prefetchable=false
	//   BAR4 mem64 0xfe000000+0x4000 prefetchable=true
	//   MSI-X 3 vectors, table in BAR1 at 0x0
}
