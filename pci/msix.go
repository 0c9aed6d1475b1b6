package pci

import "fmt"

// MSI-X capability layout (PCI 3.0 §6.8.2): message control at +2 (table
// size - 1 in bits 10:0, function mask bit 14, enable bit 15), table
// offset/BIR at +4, PBA offset/BIR at +8. The BIR (low three bits) names
// the BAR; the rest is the offset into it.
const (
	msixControlOff      = 2
	msixTableOff        = 4
	msixPBAOff          = 8
	msixCapLen          = 12
	msixTableSizeMask   = 0x7FF
	msixFunctionMask    = 1 << 14
	msixEnable          = 1 << 15
	msixBIRMask         = 7
	msixEntrySize       = 16
	msixEntryAddrLo     = 0
	msixEntryAddrHi     = 4
	msixEntryData       = 8
	msixEntryCtl        = 12
	msixEntryMasked     = 1 << 0
	msixBARs            = 6
	msixPBABitsPerQword = 64
)

// MSIX is a function's MSI-X capability and, once Map has been called, its
// vector table and pending bit array.
type MSIX struct {
	// dev is the function the capability belongs to.
	dev *Device
	// off is the capability's offset in configuration space.
	off uint16

	// TableSize is the number of table entries (1..2048).
	TableSize int
	// TableBIR is the BAR holding the table; TableOffset is where in it.
	TableBIR    int
	TableOffset uint32
	// PBABIR is the BAR holding the pending bit array; PBAOffset is where.
	PBABIR    int
	PBAOffset uint32

	// table and pba are the mapped regions; nil until Map.
	table MMIO
	pba   MMIO
}

// MSIX finds and decodes the MSI-X capability. It checks the BAR
// indicators; Map checks the regions against the BARs.
func (d *Device) MSIX() (*MSIX, error) {
	c, err := d.FindCapability(CapMSIX)
	if err != nil {
		return nil, err
	}
	if int(c.Offset)+msixCapLen > legacyConfigSpaceSz {
		return nil, fmt.Errorf("%v: MSI-X capability at %#02x runs past config space: %w", d.Addr, c.Offset, ErrBadCapability)
	}
	ctl := d.Read16(c.Offset + msixControlOff)
	tbl := d.Read32(c.Offset + msixTableOff)
	pba := d.Read32(c.Offset + msixPBAOff)
	if ctl == 0xFFFF || tbl == 0xFFFFFFFF || pba == 0xFFFFFFFF {
		return nil, fmt.Errorf("%v: MSI-X capability at %#02x: %w", d.Addr, c.Offset, ErrAllOnes)
	}
	x := &MSIX{
		dev:         d,
		off:         c.Offset,
		TableSize:   int(ctl&msixTableSizeMask) + 1,
		TableBIR:    int(tbl & msixBIRMask),
		TableOffset: tbl &^ msixBIRMask,
		PBABIR:      int(pba & msixBIRMask),
		PBAOffset:   pba &^ msixBIRMask,
	}
	if x.TableBIR >= msixBARs || x.PBABIR >= msixBARs {
		return nil, fmt.Errorf("%v: MSI-X table BIR %d, PBA BIR %d: %w", d.Addr, x.TableBIR, x.PBABIR, ErrBadCapability)
	}
	return x, nil
}

// tableBytes and pbaBytes are the sizes of the two regions.
func (x *MSIX) tableBytes() uint64 { return uint64(x.TableSize) * msixEntrySize }
func (x *MSIX) pbaBytes() uint64 {
	return uint64((x.TableSize+msixPBABitsPerQword-1)/msixPBABitsPerQword) * 8
}

// Map decodes the BARs holding the table and the PBA, checks that both
// regions lie inside memory BARs, and maps them through m. Sizing the BARs
// briefly turns memory decoding off, so Map only does it once: later calls
// return at once.
func (x *MSIX) Map(m Mapper) error {
	if x.table != nil {
		return nil
	}
	t, err := x.mapRegion(m, "table", x.TableBIR, x.TableOffset, x.tableBytes())
	if err != nil {
		return err
	}
	p, err := x.mapRegion(m, "PBA", x.PBABIR, x.PBAOffset, x.pbaBytes())
	if err != nil {
		return err
	}
	x.table, x.pba = t, p
	return nil
}

func (x *MSIX) mapRegion(m Mapper, what string, bir int, off uint32, n uint64) (MMIO, error) {
	b, err := x.dev.BAR(bir)
	if err != nil {
		return nil, fmt.Errorf("MSI-X %s: %w", what, err)
	}
	if b.Kind != BARMem32 && b.Kind != BARMem64 {
		return nil, fmt.Errorf("%v: MSI-X %s in BAR %d of kind %v: %w", x.dev.Addr, what, bir, b.Kind, ErrBadCapability)
	}
	if !b.Contains(uint64(off), n) {
		return nil, fmt.Errorf("%v: MSI-X %s %#x+%#x outside BAR %d (%#x bytes): %w", x.dev.Addr, what, off, n, bir, b.Size, ErrBadCapability)
	}
	r, err := b.Map(x.dev, uint64(off), n, m, nil)
	if err != nil {
		return nil, fmt.Errorf("MSI-X %s: %w", what, err)
	}
	return r, nil
}

// entry checks i and that the table is mapped, and returns the entry's
// offset in the table.
func (x *MSIX) entry(i int) (uint64, error) {
	if x.table == nil {
		return 0, fmt.Errorf("%v: MSI-X table not mapped: %w", x.dev.Addr, ErrOutOfRange)
	}
	if i < 0 || i >= x.TableSize {
		return 0, fmt.Errorf("%v: MSI-X entry %d of %d: %w", x.dev.Addr, i, x.TableSize, ErrOutOfRange)
	}
	return uint64(i) * msixEntrySize, nil
}

// SetEntry programs table entry i with a message address and data. The
// entry is masked while its address and data change (their value is
// undefined to the function while unmasked, PCI 3.0 §6.8.2.9) and left
// masked or not as asked.
func (x *MSIX) SetEntry(i int, addr uint64, data uint32, masked bool) error {
	e, err := x.entry(i)
	if err != nil {
		return err
	}
	if addr&3 != 0 {
		return fmt.Errorf("%v: MSI-X address %#x not dword aligned: %w", x.dev.Addr, addr, ErrOutOfRange)
	}
	ctl := x.table.Read32(e + msixEntryCtl)
	x.table.Write32(e+msixEntryCtl, ctl|msixEntryMasked)
	x.table.Write32(e+msixEntryAddrLo, uint32(addr))
	x.table.Write32(e+msixEntryAddrHi, uint32(addr>>32))
	x.table.Write32(e+msixEntryData, data)
	if !masked {
		ctl &^= msixEntryMasked
	} else {
		ctl |= msixEntryMasked
	}
	x.table.Write32(e+msixEntryCtl, ctl)
	return nil
}

// Entry reads back entry i.
func (x *MSIX) Entry(i int) (addr uint64, data uint32, masked bool, err error) {
	e, err := x.entry(i)
	if err != nil {
		return 0, 0, false, err
	}
	addr = uint64(x.table.Read32(e+msixEntryAddrLo)) | uint64(x.table.Read32(e+msixEntryAddrHi))<<32
	data = x.table.Read32(e + msixEntryData)
	masked = x.table.Read32(e+msixEntryCtl)&msixEntryMasked != 0
	return addr, data, masked, nil
}

// SetMasked masks or unmasks entry i.
func (x *MSIX) SetMasked(i int, masked bool) error {
	e, err := x.entry(i)
	if err != nil {
		return err
	}
	ctl := x.table.Read32(e + msixEntryCtl)
	if masked {
		ctl |= msixEntryMasked
	} else {
		ctl &^= msixEntryMasked
	}
	x.table.Write32(e+msixEntryCtl, ctl)
	return nil
}

// Pending reports entry i's pending bit: a message the function held back
// while the entry was masked.
func (x *MSIX) Pending(i int) (bool, error) {
	if _, err := x.entry(i); err != nil {
		return false, err
	}
	q := x.pba.Read64(uint64(i/msixPBABitsPerQword) * 8)
	return q&(1<<(i%msixPBABitsPerQword)) != 0, nil
}

func (x *MSIX) control() uint16 { return x.dev.Read16(x.off + msixControlOff) }

// setControl sets or clears bits of message control; the table size bits
// are read-only and written back unchanged.
func (x *MSIX) setControl(bits uint16, on bool) {
	ctl := x.control()
	if on {
		ctl |= bits
	} else {
		ctl &^= bits
	}
	x.dev.Write16(x.off+msixControlOff, ctl)
}

// SetEnabled turns MSI-X on or off. Turning it on also disables INTx.
func (x *MSIX) SetEnabled(on bool) {
	if on {
		x.dev.SetINTx(false)
	}
	x.setControl(msixEnable, on)
}

// Enabled reports whether MSI-X is on.
func (x *MSIX) Enabled() bool { return x.control()&msixEnable != 0 }

// SetFunctionMask masks or unmasks every vector at once, whatever the
// per-entry masks say.
func (x *MSIX) SetFunctionMask(masked bool) { x.setControl(msixFunctionMask, masked) }

// FunctionMasked reports the function mask.
func (x *MSIX) FunctionMasked() bool { return x.control()&msixFunctionMask != 0 }
