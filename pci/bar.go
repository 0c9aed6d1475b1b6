package pci

import (
	"fmt"
	"math/bits"
)

// BARKind is the address space a BAR decodes.
type BARKind uint8

// BAR kinds (PCI 3.0 §6.2.5.1).
const (
	BARNone  BARKind = iota // not implemented (reads as zero), or the upper half of a 64-bit BAR
	BARIO                   // I/O space
	BARMem32                // 32-bit memory space
	BARMem64                // 64-bit memory space, two registers
)

// String names the kind: "none", "io", "mem32" or "mem64".
func (k BARKind) String() string {
	switch k {
	case BARNone:
		return "none"
	case BARIO:
		return "io"
	case BARMem32:
		return "mem32"
	case BARMem64:
		return "mem64"
	}
	return fmt.Sprintf("BARKind(%d)", uint8(k))
}

// BAR is one decoded and sized base address register.
type BAR struct {
	// Index is the register number, 0..5 (0..1 on a bridge). A 64-bit BAR
	// takes Index and Index+1.
	Index int
	// Kind is the address space.
	Kind BARKind
	// Prefetchable is set for memory without read side effects.
	Prefetchable bool
	// Addr is the assigned base address; 0 when none is assigned.
	Addr uint64
	// Size is the decoded size in bytes, a power of two; 0 for BARNone.
	Size uint64
}

// BAR register bits (PCI 3.0 §6.2.5.1).
const (
	barIOSpace      uint32 = 1 << 0
	barMemTypeMask  uint32 = 3 << 1
	barMemType32    uint32 = 0 << 1
	barMemType1M    uint32 = 1 << 1 // PCI 2.x "below 1 MiB": decoded as 32-bit
	barMemType64    uint32 = 2 << 1
	barPrefetchable uint32 = 1 << 3
	barIOAddrMask   uint32 = ^uint32(3)
	barMemAddrMask  uint32 = ^uint32(0xF)
)

// Address space limits a BAR must fit in.
const (
	// ioSpaceLimit is the x86 I/O port space.
	ioSpaceLimit uint64 = 1 << 16
	// mem32Limit is the 32-bit memory space.
	mem32Limit uint64 = 1 << 32
	// mem64Limit is the largest physical address width x86-64 defines
	// (52 bits, Intel SDM vol. 3A §4.1.4).
	mem64Limit uint64 = 1 << 52
)

// BARs decodes and sizes every BAR of the function, skipping unimplemented
// ones and upper halves of 64-bit BARs. See BAR for the procedure.
func (d *Device) BARs() ([]BAR, error) {
	var out []BAR
	for i := 0; i < d.numBARs(); i++ {
		b, err := d.BAR(i)
		if err != nil {
			return out, err
		}
		if b.Kind == BARMem64 {
			i++
		}
		if b.Kind != BARNone {
			out = append(out, b)
		}
	}
	return out, nil
}

// BAR decodes and sizes BAR i. Sizing writes all ones to the register and
// reads back which address bits stick; I/O and memory decoding are turned
// off in the command register meanwhile (a half-written BAR would otherwise
// claim a random range) and the register and command are restored after.
// Do not call it while the device is being used by someone else.
//
// Index i must be the lower register of a 64-bit BAR; asking for the upper
// half reads it as a 32-bit BAR, which is meaningless.
func (d *Device) BAR(i int) (BAR, error) {
	if i < 0 || i >= d.numBARs() {
		return BAR{}, fmt.Errorf("%v: BAR %d of %d: %w", d.Addr, i, d.numBARs(), ErrOutOfRange)
	}
	off := uint16(offBAR0 + 4*i)
	lo := d.Read32(off)
	if lo == 0xFFFFFFFF {
		return BAR{}, fmt.Errorf("%v: BAR %d: %w", d.Addr, i, ErrAllOnes)
	}
	b := BAR{Index: i}
	is64 := false
	switch {
	case lo&barIOSpace != 0:
		b.Kind = BARIO
	case lo&barMemTypeMask == barMemType64:
		if i+1 >= d.numBARs() {
			return BAR{}, fmt.Errorf("%v: BAR %d: 64-bit BAR in the last register: %w", d.Addr, i, ErrBadBAR)
		}
		b.Kind = BARMem64
		is64 = true
	case lo&barMemTypeMask == barMemType32, lo&barMemTypeMask == barMemType1M:
		b.Kind = BARMem32
	default:
		return BAR{}, fmt.Errorf("%v: BAR %d: reserved memory type in %#08x: %w", d.Addr, i, lo, ErrBadBAR)
	}
	if b.Kind != BARIO {
		b.Prefetchable = lo&barPrefetchable != 0
	}

	var hi uint32
	if is64 {
		hi = d.Read32(off + 4)
	}
	loMask, hiMask := d.sizeBAR(off, lo, hi, is64)

	switch b.Kind {
	case BARIO:
		b.Addr = uint64(lo & barIOAddrMask)
		m := loMask & barIOAddrMask
		if m == 0 {
			return BAR{Index: i}, nil
		}
		if m&0xFFFF0000 == 0 {
			// A device decoding only 16 address bits hardwires the
			// upper ones to zero (PCI 3.0 §6.2.5.1).
			m |= 0xFFFF0000
		}
		b.Size = uint64(^m + 1)
	case BARMem32:
		b.Addr = uint64(lo & barMemAddrMask)
		m := loMask & barMemAddrMask
		if m == 0 {
			return BAR{Index: i}, nil
		}
		b.Size = uint64(^m + 1)
	case BARMem64:
		b.Addr = uint64(hi)<<32 | uint64(lo&barMemAddrMask)
		m := uint64(hiMask)<<32 | uint64(loMask&barMemAddrMask)
		if m == 0 {
			return BAR{Index: i}, nil
		}
		b.Size = ^m + 1
	}
	if err := b.check(); err != nil {
		return BAR{}, fmt.Errorf("%v: %w", d.Addr, err)
	}
	return b, nil
}

// sizeBAR writes all ones to the BAR at off (and off+4 for a 64-bit BAR)
// with decoding off, reads back the address masks and restores everything.
func (d *Device) sizeBAR(off uint16, lo, hi uint32, is64 bool) (loMask, hiMask uint32) {
	cmd := d.Command()
	d.SetCommand(cmd &^ (CommandIO | CommandMemory))
	d.Write32(off, 0xFFFFFFFF)
	loMask = d.Read32(off)
	d.Write32(off, lo)
	if is64 {
		d.Write32(off+4, 0xFFFFFFFF)
		hiMask = d.Read32(off + 4)
		d.Write32(off+4, hi)
	}
	d.SetCommand(cmd)
	return loMask, hiMask
}

// check validates a decoded BAR: a power-of-two size (the read-back mask
// was contiguous ones from the top), a naturally aligned base, and a range
// inside the BAR's address space.
func (b BAR) check() error {
	if b.Size == 0 || b.Size&(b.Size-1) != 0 {
		return fmt.Errorf("BAR %d: size %#x is not a power of two: %w", b.Index, b.Size, ErrBadBAR)
	}
	if b.Addr&(b.Size-1) != 0 {
		return fmt.Errorf("BAR %d: base %#x not aligned to size %#x: %w", b.Index, b.Addr, b.Size, ErrBadBAR)
	}
	limit := mem64Limit
	switch b.Kind {
	case BARIO:
		limit = ioSpaceLimit
	case BARMem32:
		limit = mem32Limit
	}
	if end, carry := bits.Add64(b.Addr, b.Size, 0); carry != 0 || end > limit {
		return fmt.Errorf("BAR %d: %v range %#x+%#x past the address space (%#x): %w", b.Index, b.Kind, b.Addr, b.Size, limit, ErrBadBAR)
	}
	return nil
}

// Contains reports whether [off, off+n) lies inside the BAR.
func (b BAR) Contains(off, n uint64) bool {
	end, carry := bits.Add64(off, n, 0)
	return carry == 0 && end <= b.Size
}

// MapBAR returns an accessor for n bytes of BAR i starting at off: memory
// BARs through m, I/O BARs through io (either may be nil when the caller
// knows the BAR kind). The range must lie inside the BAR and the BAR must
// have an address.
func (d *Device) MapBAR(i int, off, n uint64, m Mapper, io PortIO) (MMIO, error) {
	b, err := d.BAR(i)
	if err != nil {
		return nil, err
	}
	return b.Map(d, off, n, m, io)
}

// Map is MapBAR for an already decoded BAR of d.
func (b BAR) Map(d *Device, off, n uint64, m Mapper, io PortIO) (MMIO, error) {
	switch {
	case b.Kind == BARNone:
		return nil, fmt.Errorf("%v: BAR %d not implemented: %w", d.Addr, b.Index, ErrOutOfRange)
	case b.Addr == 0:
		return nil, fmt.Errorf("%v: BAR %d: %w", d.Addr, b.Index, ErrBARUnassigned)
	case !b.Contains(off, n):
		return nil, fmt.Errorf("%v: BAR %d: range %#x+%#x outside its %#x bytes: %w", d.Addr, b.Index, off, n, b.Size, ErrOutOfRange)
	}
	if b.Kind == BARIO {
		if io == nil {
			return nil, fmt.Errorf("%v: BAR %d is I/O space and no PortIO was given: %w", d.Addr, b.Index, ErrOutOfRange)
		}
		return &PortRegion{IO: io, Base: uint16(b.Addr + off), Size: uint16(n)}, nil
	}
	if m == nil {
		return nil, fmt.Errorf("%v: BAR %d is memory space and no Mapper was given: %w", d.Addr, b.Index, ErrOutOfRange)
	}
	r, err := m.MapMMIO(b.Addr+off, n)
	if err != nil {
		return nil, fmt.Errorf("%v: mapping BAR %d at %#x+%#x: %w", d.Addr, b.Index, b.Addr+off, n, err)
	}
	return r, nil
}
