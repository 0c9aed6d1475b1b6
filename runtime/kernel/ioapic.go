package kernel

import "github.com/govirtio/govirtio/runtime/console"

// The I/O APICs route the legacy INTx lines of PCI devices and the lines
// of devices on no bus, such as virtio-mmio (82093AA datasheet). QEMU's
// q35 and pc machines, and microvm with acpi=off, have one at 0xFEC00000
// with 24 inputs (GSI 0-23); microvm with ACPI on has a second at
// 0xFEC10000 for GSI 24-47, where its virtio-mmio lines are. The MADT
// (read at boot, acpi.go) lists each with its address and first GSI;
// without one the kernel assumes the first alone. Each GSI used by a
// device gets vector vectorINTxBase+GSI; all entries start masked.
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
	maxGSI            = 48   // two I/O APICs' worth: vectors 0x30-0x5f
	vectorMSIFirst    = 0x60 // vectors programs may use for MSI/MSI-X
	vectorMSILast     = 0xdf
	maxIOAPICs        = 4
	ioapicWindowSize  = 4096
)

// ioapicUnit is one I/O APIC the kernel drives.
type ioapicUnit struct {
	base    uint64 // physical address of its registers
	gsiBase int    // the GSI of its input 0
	inputs  int    // inputs used: its own count, cut at maxGSI
}

var (
	ioapics  [maxIOAPICs]ioapicUnit
	nIOAPICs int
	// gsiActiveHigh marks the inputs whose device drives them active high
	// (opened as /dev/gsi/G); the others are PCI INTx lines, active low.
	gsiActiveHigh [maxGSI]bool
)

func (u *ioapicUnit) read(reg uint32) uint32 {
	*(*uint32)(physPtr(u.base + ioapicRegSel)) = reg
	return *(*uint32)(physPtr(u.base + ioapicWindow))
}

func (u *ioapicUnit) write(reg, v uint32) {
	*(*uint32)(physPtr(u.base + ioapicRegSel)) = reg
	*(*uint32)(physPtr(u.base + ioapicWindow)) = v
}

// initIOAPIC maps the I/O APICs the MADT lists (or the default one) and
// masks every input.
func initIOAPIC() {
	if !madtFound || madt.NumIOAPICs == 0 {
		addIOAPIC(ioapicDefaultBase, 0)
		return
	}
	for i := 0; i < madt.NumIOAPICs; i++ {
		a := madt.IOAPICs[i]
		addIOAPIC(uint64(a.Address), int64(a.GSIBase))
	}
	if nIOAPICs == 0 {
		console.Print("kernel: no usable I/O APIC in the MADT; assuming one at 0xfec00000\n")
		addIOAPIC(ioapicDefaultBase, 0)
	}
}

// addIOAPIC maps the I/O APIC at base serving GSIs from gsiBase, masks its
// inputs and adds it to ioapics, unless the MADT entry cannot be used: a
// window that is not page-aligned or not below 4 GiB, a first GSI past
// maxGSI, or GSIs another I/O APIC already serves.
func addIOAPIC(base uint64, gsiBase int64) {
	bad := func(why string) {
		console.Print("kernel: I/O APIC at ")
		console.PrintHex(base)
		console.Print(": ")
		console.Print(why)
		console.Print("; not used\n")
	}
	switch {
	case nIOAPICs == maxIOAPICs:
		bad("more I/O APICs than the kernel drives")
		return
	case base == 0 || base%ioapicWindowSize != 0 || base >= 1<<32:
		bad("bad address")
		return
	case gsiBase < 0 || gsiBase >= maxGSI:
		bad("first GSI beyond the kernel's vectors")
		return
	}
	if err := mapDevice(base, ioapicWindowSize); err != nil {
		panicKernel("map IOAPIC", base)
	}
	u := ioapicUnit{base: base, gsiBase: int(gsiBase)}
	u.inputs = min(int(u.read(ioapicVersion)>>16&0xff)+1, maxGSI-u.gsiBase)
	for i := 0; i < nIOAPICs; i++ {
		o := &ioapics[i]
		if u.gsiBase < o.gsiBase+o.inputs && o.gsiBase < u.gsiBase+u.inputs {
			bad("GSIs overlap another I/O APIC's")
			return
		}
	}
	for pin := 0; pin < u.inputs; pin++ {
		u.write(ioapicRedirBase+2*uint32(pin), redirMasked|uint32(vectorINTxBase+u.gsiBase+pin))
		u.write(ioapicRedirBase+2*uint32(pin)+1, 0)
	}
	ioapics[nIOAPICs] = u
	nIOAPICs++
}

// ioapicFor returns the I/O APIC serving gsi and the input it arrives on.
func ioapicFor(gsi int) (*ioapicUnit, int, bool) {
	for i := 0; i < nIOAPICs; i++ {
		if u := &ioapics[i]; gsi >= u.gsiBase && gsi < u.gsiBase+u.inputs {
			return u, gsi - u.gsiBase, true
		}
	}
	return nil, 0, false
}

// routeGSI points gsi at its vector and this CPU, level-triggered, active
// low as PCI INTx lines are unless gsiActiveHigh says otherwise, masked or
// not.
func routeGSI(gsi int, masked bool) {
	u, pin, ok := ioapicFor(gsi)
	if !ok {
		return
	}
	lo := uint32(vectorINTxBase+gsi) | redirLevel
	if !gsiActiveHigh[gsi] {
		lo |= redirActiveLow
	}
	if masked {
		lo |= redirMasked
	}
	u.write(ioapicRedirBase+2*uint32(pin)+1, lapicIDValue()<<24)
	u.write(ioapicRedirBase+2*uint32(pin), lo)
}
