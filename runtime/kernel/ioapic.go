package kernel

// The I/O APIC routes the legacy INTx lines of PCI devices and the lines
// of devices on no bus, such as virtio-mmio (82093AA datasheet; QEMU's q35,
// pc and microvm machines have one at 0xFEC00000 with 24 inputs, GSI 0-23;
// microvm with ACPI on adds a second one, which is not used here). Each
// GSI used by a device gets vector vectorINTxBase+GSI; all entries start
// masked.
const (
	ioapicDefaultBase = 0xfec00000
	ioapicRegSel      = 0x00
	ioapicWindow      = 0x10
	ioapicVersion     = 0x01
	ioapicRedirBase   = 0x10
	redirMasked       = 1 << 16
	redirLevel        = 1 << 15
	redirActiveLow    = 1 << 13
	vectorINTxBase    = 0x30 // GSI n -> vector 0x30+n
	maxGSI            = 24
	vectorMSIFirst    = 0x50 // vectors programs may use for MSI/MSI-X
	vectorMSILast     = 0xdf
)

var (
	ioapicBase    uint64
	ioapicEntries int
	// gsiActiveHigh marks the inputs whose device drives them active high
	// (opened as /dev/gsi/G); the others are PCI INTx lines, active low.
	gsiActiveHigh [maxGSI]bool
)

func ioapicRead(reg uint32) uint32 {
	*(*uint32)(physPtr(ioapicBase + ioapicRegSel)) = reg
	return *(*uint32)(physPtr(ioapicBase + ioapicWindow))
}

func ioapicWrite(reg, v uint32) {
	*(*uint32)(physPtr(ioapicBase + ioapicRegSel)) = reg
	*(*uint32)(physPtr(ioapicBase + ioapicWindow)) = v
}

// initIOAPIC maps the I/O APIC and masks every input.
func initIOAPIC() {
	ioapicBase = ioapicDefaultBase
	if err := mapDevice(ioapicBase, 4096); err != nil {
		panicKernel("map IOAPIC", ioapicBase)
	}
	ioapicEntries = int(ioapicRead(ioapicVersion)>>16&0xff) + 1
	if ioapicEntries > maxGSI {
		ioapicEntries = maxGSI
	}
	for gsi := 0; gsi < ioapicEntries; gsi++ {
		ioapicWrite(ioapicRedirBase+2*uint32(gsi), redirMasked|uint32(vectorINTxBase+gsi))
		ioapicWrite(ioapicRedirBase+2*uint32(gsi)+1, 0)
	}
}

// routeGSI points gsi at its vector and this CPU, level-triggered, active
// low as PCI INTx lines are unless gsiActiveHigh says otherwise, masked or
// not.
func routeGSI(gsi int, masked bool) {
	if gsi < 0 || gsi >= ioapicEntries {
		return
	}
	lo := uint32(vectorINTxBase+gsi) | redirLevel
	if !gsiActiveHigh[gsi] {
		lo |= redirActiveLow
	}
	if masked {
		lo |= redirMasked
	}
	ioapicWrite(ioapicRedirBase+2*uint32(gsi)+1, lapicIDValue()<<24)
	ioapicWrite(ioapicRedirBase+2*uint32(gsi), lo)
}
