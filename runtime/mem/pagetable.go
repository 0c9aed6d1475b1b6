package mem

import (
	"errors"
)

// Page-table entry bits (Intel SDM Vol. 3, §4.5, tables 4-15 to 4-20).
const (
	PTEPresent  uint64 = 1 << 0
	PTEWrite    uint64 = 1 << 1
	PTEUser     uint64 = 1 << 2
	PTEWriteThr uint64 = 1 << 3 // PWT
	PTENoCache  uint64 = 1 << 4 // PCD: with PWT, strong uncacheable (device memory)
	PTEAccessed uint64 = 1 << 5
	PTEDirty    uint64 = 1 << 6
	PTEHuge     uint64 = 1 << 7 // PS: this entry maps a 2 MiB (PD) or 1 GiB (PDPT) page
	PTEGlobal   uint64 = 1 << 8
	PTENoExec   uint64 = 1 << 63

	pteAddrMask uint64 = 0x000ffffffffff000
)

var (
	// ErrHugeMapped reports a 4 KiB operation on an address that a 2 MiB
	// page already maps.
	ErrHugeMapped = errors.New("mem: address is inside a huge page")
	// ErrSmallMapped reports a 2 MiB mapping over 4 KiB pages.
	ErrSmallMapped = errors.New("mem: 4 KiB pages are mapped there")
	// ErrUnaligned reports an address that is not aligned to the page size
	// of the operation.
	ErrUnaligned = errors.New("mem: address not aligned to the page size")
)

// PageTable edits one four-level x86-64 page-table tree.
type PageTable struct {
	// Root is the physical address of the PML4, the value for CR3.
	Root uint64
	// frames provides zeroed frames for new tables.
	frames *Frames
	// table turns a table's physical address into memory the kernel can
	// write (the identity map on bare metal, a test arena on the host).
	table func(phys uint64) *[512]uint64
}

// NewPageTable allocates an empty PML4. table maps a physical address to
// the 4 KiB table stored there.
func NewPageTable(frames *Frames, table func(phys uint64) *[512]uint64) (*PageTable, error) {
	pt := &PageTable{frames: frames, table: table}
	root, err := pt.newTable()
	if err != nil {
		return nil, err
	}
	pt.Root = root
	return pt, nil
}

// InitPageTable is NewPageTable for a PageTable the caller already holds
// (a global in the kernel, which cannot allocate).
func (pt *PageTable) Init(frames *Frames, table func(phys uint64) *[512]uint64) error {
	pt.frames, pt.table = frames, table
	root, err := pt.newTable()
	if err != nil {
		return err
	}
	pt.Root = root
	return nil
}

func (pt *PageTable) newTable() (uint64, error) {
	phys, err := pt.frames.Alloc()
	if err != nil {
		return 0, err
	}
	clear(pt.table(phys)[:])
	return phys, nil
}

func index(va uint64, level int) uint64 { return (va >> (12 + 9*uint(level))) & 511 }

// entry returns the entry for va at the given level (0 = PT, 1 = PD,
// 2 = PDPT), creating intermediate tables when create is set. It stops
// early at a huge page and returns that entry with its level.
func (pt *PageTable) entry(va uint64, level int, create bool) (*uint64, int, error) {
	t := pt.table(pt.Root)
	for l := 3; l > level; l-- {
		e := &t[index(va, l)]
		if *e&PTEPresent == 0 {
			if !create {
				return nil, l, nil
			}
			phys, err := pt.newTable()
			if err != nil {
				return nil, l, err
			}
			// Intermediate entries are permissive; leaves decide.
			*e = phys | PTEPresent | PTEWrite | PTEUser
		} else if *e&PTEHuge != 0 {
			return e, l, nil
		}
		t = pt.table(*e & pteAddrMask)
	}
	return &t[index(va, level)], level, nil
}

// Map maps the 4 KiB page at va to the frame at pa with flags (Present is
// added). It replaces an existing 4 KiB mapping.
func (pt *PageTable) Map(va, pa, flags uint64) error {
	if va%PageSize != 0 || pa%PageSize != 0 {
		return ErrUnaligned
	}
	e, l, err := pt.entry(va, 0, true)
	if err != nil {
		return err
	}
	if l != 0 {
		return ErrHugeMapped
	}
	*e = pa | flags | PTEPresent
	return nil
}

// MapHuge maps the 2 MiB page at va to pa.
func (pt *PageTable) MapHuge(va, pa, flags uint64) error {
	if va%HugePageSize != 0 || pa%HugePageSize != 0 {
		return ErrUnaligned
	}
	e, l, err := pt.entry(va, 1, true)
	if err != nil {
		return err
	}
	if l != 1 {
		return ErrHugeMapped
	}
	if *e&PTEPresent != 0 && *e&PTEHuge == 0 {
		return ErrSmallMapped
	}
	*e = pa | flags | PTEPresent | PTEHuge
	return nil
}

// MapRange maps [va, va+size) to [pa, pa+size) with 2 MiB pages where both
// sides allow it and 4 KiB pages elsewhere.
func (pt *PageTable) MapRange(va, pa, size, flags uint64) error {
	end := va + size
	for va < end {
		if va%HugePageSize == 0 && pa%HugePageSize == 0 && end-va >= HugePageSize {
			if err := pt.MapHuge(va, pa, flags); err == nil {
				va += HugePageSize
				pa += HugePageSize
				continue
			}
		}
		if err := pt.Map(va, pa, flags); err != nil {
			return err
		}
		va += PageSize
		pa += PageSize
	}
	return nil
}

// Unmap removes the 4 KiB mapping at va and returns the frame it mapped.
// The caller invalidates the TLB entry.
func (pt *PageTable) Unmap(va uint64) (pa uint64, ok bool, err error) {
	e, l, err := pt.entry(va, 0, false)
	if err != nil || e == nil {
		return 0, false, err
	}
	if l != 0 {
		return 0, false, ErrHugeMapped
	}
	if *e&PTEPresent == 0 {
		return 0, false, nil
	}
	pa = *e & pteAddrMask
	*e = 0
	return pa, true, nil
}

// Lookup translates va. flags are the leaf entry's bits.
func (pt *PageTable) Lookup(va uint64) (pa, flags uint64, ok bool) {
	e, l, _ := pt.entry(va, 0, false)
	if e == nil || *e&PTEPresent == 0 {
		return 0, 0, false
	}
	mask := uint64(PageSize)<<(9*uint(l)) - 1
	return (*e & pteAddrMask &^ mask) | (va & mask), *e &^ pteAddrMask, true
}

// SetFlags replaces the flags of the 4 KiB mapping at va, keeping its
// frame; it reports whether a mapping was there.
func (pt *PageTable) SetFlags(va, flags uint64) bool {
	e, l, _ := pt.entry(va, 0, false)
	if e == nil || l != 0 || *e&PTEPresent == 0 {
		return false
	}
	*e = *e&pteAddrMask | flags | PTEPresent
	return true
}
