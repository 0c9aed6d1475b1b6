package mem

import (
	"errors"
	"fmt"
	"testing"
)

// arenaBase is the fake physical address of the first arena frame; it is
// not zero so that a table address confused with an index shows up.
const arenaBase = 0x10_0000

// arena is fake physical memory for page tables: frame k of mem is the
// physical address arenaBase + k*PageSize.
type arena struct {
	mem    []uint64 // the frames, 512 words each
	frames *Frames  // allocator owning exactly the arena's frames
}

// newArena returns an arena of n frames filled with garbage, so that a
// table the code forgets to clear is noticed.
func newArena(t testing.TB, n int) *arena {
	t.Helper()
	a := &arena{mem: make([]uint64, n*512)}
	for i := range a.mem {
		a.mem[i] = 0xdead_beef_dead_beef
	}
	a.frames = newFrames((arenaBase/PageSize + n + 63) / 64)
	a.frames.AddRange(arenaBase, arenaBase+uint64(n)*PageSize)
	return a
}

// table is the function PageTable uses to reach a table; it fails the test
// loudly (by panicking) on an address outside the arena or unaligned.
func (a *arena) table(phys uint64) *[512]uint64 {
	if phys%PageSize != 0 || phys < arenaBase || phys >= arenaBase+uint64(len(a.mem))*8 {
		panic(fmt.Sprintf("page table at %#x is outside the arena", phys))
	}
	off := (phys - arenaBase) / 8
	return (*[512]uint64)(a.mem[off : off+512])
}

// newPageTable returns an empty page table over an arena of n frames.
func newPageTable(t testing.TB, n int) (*PageTable, *arena) {
	t.Helper()
	a := newArena(t, n)
	pt, err := NewPageTable(a.frames, a.table)
	if err != nil {
		t.Fatal(err)
	}
	return pt, a
}

func TestNewPageTableIsEmpty(t *testing.T) {
	pt, a := newPageTable(t, 4)
	if pt.Root%PageSize != 0 || pt.Root < arenaBase {
		t.Fatalf("Root = %#x, want an arena frame", pt.Root)
	}
	for i, e := range a.table(pt.Root) {
		if e != 0 {
			t.Fatalf("PML4 entry %d = %#x, want 0 (a new table is cleared)", i, e)
		}
	}
	for _, va := range []uint64{0, 0x1000, 0x7fff_ffff_f000} {
		if pa, _, ok := pt.Lookup(va); ok {
			t.Errorf("Lookup(%#x) = %#x in an empty table", va, pa)
		}
	}
	if got := a.frames.Free(); got != 3 {
		t.Errorf("Free = %d after NewPageTable, want 3 (one frame for the PML4)", got)
	}
}

func TestPageTableInitOverCallerStorage(t *testing.T) {
	a := newArena(t, 4)
	var pt PageTable
	if err := pt.Init(a.frames, a.table); err != nil {
		t.Fatal(err)
	}
	if err := pt.Map(0x40_0000, 0x1234_5000, PTEWrite); err != nil {
		t.Fatal(err)
	}
	if pa, _, ok := pt.Lookup(0x40_0008); !ok || pa != 0x1234_5008 {
		t.Fatalf("Lookup = %#x, %v; want 0x12345008, true", pa, ok)
	}
	// All four frames are used now (PML4, PDPT, PD, PT).
	if err := pt.Init(a.frames, a.table); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Init with no frame left: err = %v, want ErrNoMemory", err)
	}
}

func TestPageTableOutOfFrames(t *testing.T) {
	tests := []struct {
		name   string
		frames int
		op     func(pt *PageTable) error
	}{
		{
			name:   "a 4K map needing three new tables fails with ErrNoMemory",
			frames: 3,
			op:     func(pt *PageTable) error { return pt.Map(0x1000, 0x2000, 0) },
		},
		{
			name:   "a 2M map needing two new tables fails with ErrNoMemory",
			frames: 2,
			op:     func(pt *PageTable) error { return pt.MapHuge(0x20_0000, 0x20_0000, 0) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _ := newPageTable(t, tt.frames)
			if err := tt.op(pt); !errors.Is(err, ErrNoMemory) {
				t.Fatalf("err = %v, want ErrNoMemory", err)
			}
		})
	}
	t.Run("NewPageTable without frames fails with ErrNoMemory", func(t *testing.T) {
		a := newArena(t, 0)
		if _, err := NewPageTable(a.frames, a.table); !errors.Is(err, ErrNoMemory) {
			t.Fatalf("err = %v, want ErrNoMemory", err)
		}
	})
}

func TestPageTableMapLookup(t *testing.T) {
	type mapping struct {
		huge        bool
		va, pa, flg uint64
	}
	type probe struct {
		va        uint64
		wantPA    uint64
		wantFlags uint64 // checked when wantOK; Present is implied
		wantOK    bool
	}
	tests := []struct {
		name   string
		maps   []mapping
		probes []probe
	}{
		{
			name: "map then lookup translates inside 4K and 2M pages",
			maps: []mapping{
				{va: 0x40_1000, pa: 0x9000, flg: PTEWrite | PTEUser},
				{huge: true, va: 0x8000_0000, pa: 0x1_0020_0000, flg: PTEWrite | PTENoExec},
			},
			probes: []probe{
				{va: 0x40_1000, wantPA: 0x9000, wantFlags: PTEWrite | PTEUser, wantOK: true},
				{va: 0x40_1abc, wantPA: 0x9abc, wantFlags: PTEWrite | PTEUser, wantOK: true},
				{va: 0x40_1fff, wantPA: 0x9fff, wantFlags: PTEWrite | PTEUser, wantOK: true},
				{va: 0x40_0fff, wantOK: false},
				{va: 0x40_2000, wantOK: false},
				{va: 0x8000_0000, wantPA: 0x1_0020_0000, wantFlags: PTEWrite | PTENoExec | PTEHuge, wantOK: true},
				{va: 0x8012_3456, wantPA: 0x1_0032_3456, wantFlags: PTEWrite | PTENoExec | PTEHuge, wantOK: true},
				{va: 0x801f_ffff, wantPA: 0x1_003f_ffff, wantFlags: PTEWrite | PTENoExec | PTEHuge, wantOK: true},
				{va: 0x8020_0000, wantOK: false},
				{va: 0x7fff_ffff, wantOK: false},
			},
		},
		{
			name: "a second map of a 4K page replaces the first",
			maps: []mapping{
				{va: 0x5000, pa: 0x1000, flg: PTEWrite},
				{va: 0x5000, pa: 0x7000, flg: PTENoCache},
			},
			probes: []probe{{va: 0x5010, wantPA: 0x7010, wantFlags: PTENoCache, wantOK: true}},
		},
		{
			name: "a second map of a 2M page replaces the first",
			maps: []mapping{
				{huge: true, va: 0x20_0000, pa: 0x40_0000},
				{huge: true, va: 0x20_0000, pa: 0x60_0000, flg: PTEUser},
			},
			probes: []probe{{va: 0x20_0010, wantPA: 0x60_0010, wantFlags: PTEUser | PTEHuge, wantOK: true}},
		},
		{
			name: "addresses in different PML4 and PDPT slots are independent",
			maps: []mapping{
				{va: 0x0000_0080_0000_0000, pa: 0x1000},
				{va: 0x0000_7fff_ffff_f000, pa: 0x2000},
				{va: 0x0000_0000_4000_0000, pa: 0x3000},
			},
			probes: []probe{
				{va: 0x0000_0080_0000_0000, wantPA: 0x1000, wantOK: true},
				{va: 0x0000_7fff_ffff_f000, wantPA: 0x2000, wantOK: true},
				{va: 0x0000_0000_4000_0000, wantPA: 0x3000, wantOK: true},
				{va: 0x0000_0000_0000_0000, wantOK: false},
				{va: 0x0000_0100_0000_0000, wantOK: false},
			},
		},
		{
			name: "the highest physical address the entry holds survives",
			maps: []mapping{{va: 0x1000, pa: 0x000f_ffff_ffff_f000, flg: PTENoExec}},
			probes: []probe{
				{va: 0x1fff, wantPA: 0x000f_ffff_ffff_ffff, wantFlags: PTENoExec, wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _ := newPageTable(t, 16)
			for _, m := range tt.maps {
				var err error
				if m.huge {
					err = pt.MapHuge(m.va, m.pa, m.flg)
				} else {
					err = pt.Map(m.va, m.pa, m.flg)
				}
				if err != nil {
					t.Fatalf("map %#x -> %#x: %v", m.va, m.pa, err)
				}
			}
			for _, p := range tt.probes {
				pa, flags, ok := pt.Lookup(p.va)
				if ok != p.wantOK {
					t.Errorf("Lookup(%#x) ok = %v, want %v", p.va, ok, p.wantOK)
					continue
				}
				if !ok {
					continue
				}
				if pa != p.wantPA {
					t.Errorf("Lookup(%#x) pa = %#x, want %#x", p.va, pa, p.wantPA)
				}
				if want := p.wantFlags | PTEPresent; flags != want {
					t.Errorf("Lookup(%#x) flags = %#x, want %#x", p.va, flags, want)
				}
			}
		})
	}
}

func TestPageTableSharesIntermediateTables(t *testing.T) {
	pt, a := newPageTable(t, 8)
	before := a.frames.Free()
	// Two pages in the same 2 MiB need one PDPT, one PD and one PT.
	for _, va := range []uint64{0x40_0000, 0x41_f000} {
		if err := pt.Map(va, va, 0); err != nil {
			t.Fatal(err)
		}
	}
	if used := before - a.frames.Free(); used != 3 {
		t.Errorf("mapping two pages of one 2 MiB region used %d table frames, want 3", used)
	}
	// A page in the next 2 MiB needs only a new PT.
	if err := pt.Map(0x60_0000, 0x60_0000, 0); err != nil {
		t.Fatal(err)
	}
	if used := before - a.frames.Free(); used != 4 {
		t.Errorf("a page in the neighbouring 2 MiB brought the total to %d table frames, want 4", used)
	}
	// Intermediate entries grant everything, so that leaves decide.
	pml4 := a.table(pt.Root)
	if e := pml4[0]; e&(PTEPresent|PTEWrite|PTEUser) != PTEPresent|PTEWrite|PTEUser {
		t.Errorf("PML4 entry = %#x, want Present|Write|User", e)
	}
}

func TestPageTableRejects(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(pt *PageTable) error
		op       func(pt *PageTable) error
		wantHuge bool // the error must wrap ErrHugeMapped
	}{
		{
			name: "an unaligned virtual address is rejected by Map",
			op:   func(pt *PageTable) error { return pt.Map(0x1001, 0x2000, 0) },
		},
		{
			name: "an unaligned physical address is rejected by Map",
			op:   func(pt *PageTable) error { return pt.Map(0x1000, 0x2008, 0) },
		},
		{
			name: "a 4K-aligned virtual address is rejected by MapHuge",
			op:   func(pt *PageTable) error { return pt.MapHuge(0x20_1000, 0x40_0000, 0) },
		},
		{
			name: "a 4K-aligned physical address is rejected by MapHuge",
			op:   func(pt *PageTable) error { return pt.MapHuge(0x20_0000, 0x40_1000, 0) },
		},
		{
			name:     "a 4K map inside a 2M page is ErrHugeMapped",
			setup:    func(pt *PageTable) error { return pt.MapHuge(0x20_0000, 0x40_0000, 0) },
			op:       func(pt *PageTable) error { return pt.Map(0x20_3000, 0x1000, 0) },
			wantHuge: true,
		},
		{
			name:  "a 2M map over 4K pages is rejected",
			setup: func(pt *PageTable) error { return pt.Map(0x20_3000, 0x1000, 0) },
			op:    func(pt *PageTable) error { return pt.MapHuge(0x20_0000, 0x40_0000, 0) },
		},
		{
			name:     "a 4K unmap inside a 2M page is ErrHugeMapped",
			setup:    func(pt *PageTable) error { return pt.MapHuge(0x20_0000, 0x40_0000, 0) },
			op:       func(pt *PageTable) error { _, _, err := pt.Unmap(0x20_3000); return err },
			wantHuge: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _ := newPageTable(t, 16)
			if tt.setup != nil {
				if err := tt.setup(pt); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshotLookups(pt)
			err := tt.op(pt)
			if err == nil {
				t.Fatal("succeeded, want an error")
			}
			if tt.wantHuge != errors.Is(err, ErrHugeMapped) {
				t.Errorf("err = %v; wrapping ErrHugeMapped: %v, want %v", err, errors.Is(err, ErrHugeMapped), tt.wantHuge)
			}
			if after := snapshotLookups(pt); after != before {
				t.Errorf("a rejected operation changed the translations:\n%s\nbecame\n%s", before, after)
			}
		})
	}
}

// snapshotLookups describes the translation of the pages the rejection
// tests touch, to show that a failed call changed nothing.
func snapshotLookups(pt *PageTable) string {
	var s string
	for _, va := range []uint64{0x1000, 0x20_0000, 0x20_1000, 0x20_3000, 0x3f_f000} {
		pa, flags, ok := pt.Lookup(va)
		s += fmt.Sprintf("%#x: %#x %#x %v\n", va, pa, flags, ok)
	}
	return s
}

func TestPageTableMapRange(t *testing.T) {
	const M2 = HugePageSize
	tests := []struct {
		name      string
		va, pa    uint64
		size      uint64
		pre       func(pt *PageTable) error // optional mapping made first
		wantHuge  []uint64                  // 2 MiB-aligned va of each huge page expected
		wantPages uint64                    // number of 4 KiB pages expected
	}{
		{
			name: "MapRange uses huge pages only where both sides are aligned",
			va:   2 * M2, pa: 8 * M2, size: 2*M2 + 3*PageSize,
			wantHuge:  []uint64{2 * M2, 3 * M2},
			wantPages: 3,
		},
		{
			name: "an unaligned physical side gives 4K pages throughout",
			va:   2 * M2, pa: 8*M2 + PageSize, size: 2 * M2,
			wantPages: 1024,
		},
		{
			name: "an unaligned start uses 4K pages up to the first 2M boundary",
			va:   2*M2 - 2*PageSize, pa: 8*M2 - 2*PageSize, size: 2*PageSize + M2 + PageSize,
			wantHuge:  []uint64{2 * M2},
			wantPages: 3, // two before the boundary, one after the huge page
		},
		{
			name: "a range shorter than 2M at an aligned address uses 4K pages",
			va:   2 * M2, pa: 8 * M2, size: M2 - PageSize,
			wantPages: 511,
		},
		{
			name: "4K pages already present in a 2M slot make MapRange use 4K pages there",
			va:   2 * M2, pa: 8 * M2, size: 2 * M2,
			pre:       func(pt *PageTable) error { return pt.Map(2*M2+5*PageSize, 0x1000, 0) },
			wantHuge:  []uint64{3 * M2},
			wantPages: 512,
		},
		{
			name: "an empty range maps nothing",
			va:   2 * M2, pa: 8 * M2, size: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _ := newPageTable(t, 32)
			if tt.pre != nil {
				if err := tt.pre(pt); err != nil {
					t.Fatal(err)
				}
			}
			if err := pt.MapRange(tt.va, tt.pa, tt.size, PTEWrite); err != nil {
				t.Fatalf("MapRange: %v", err)
			}
			huge := map[uint64]bool{}
			var pages uint64
			end := (tt.va + tt.size + PageSize - 1) &^ (PageSize - 1)
			for va := tt.va; va < end; va += PageSize {
				pa, flags, ok := pt.Lookup(va + 0x10)
				if !ok {
					t.Fatalf("Lookup(%#x) failed inside the range", va+0x10)
				}
				if want := tt.pa + (va - tt.va) + 0x10; pa != want {
					t.Fatalf("Lookup(%#x) = %#x, want %#x", va+0x10, pa, want)
				}
				if flags&PTEWrite == 0 {
					t.Fatalf("Lookup(%#x) flags %#x lack Write", va, flags)
				}
				if flags&PTEHuge != 0 {
					huge[va&^(M2-1)] = true
				} else {
					pages++
				}
			}
			if pages != tt.wantPages {
				t.Errorf("%d pages mapped 4K, want %d", pages, tt.wantPages)
			}
			if len(huge) != len(tt.wantHuge) {
				t.Errorf("huge pages at %#x, want %#x", keys(huge), tt.wantHuge)
			}
			for _, h := range tt.wantHuge {
				if !huge[h] {
					t.Errorf("no huge page at %#x (huge pages at %#x)", h, keys(huge))
				}
			}
			for _, va := range []uint64{tt.va - PageSize, end} {
				if pa, _, ok := pt.Lookup(va); ok && !huge[va&^(M2-1)] {
					t.Errorf("Lookup(%#x) = %#x just outside the range", va, pa)
				}
			}
		})
	}
}

func keys(m map[uint64]bool) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPageTableUnmap(t *testing.T) {
	tests := []struct {
		name   string
		mapVA  uint64 // 0: map nothing
		unmap  uint64
		wantPA uint64
		wantOK bool
	}{
		{name: "unmap returns the frame and lookup then fails", mapVA: 0x40_3000, unmap: 0x40_3000, wantPA: 0x7000, wantOK: true},
		{name: "unmap of an address inside the page removes the page", mapVA: 0x40_3000, unmap: 0x40_3ff8, wantPA: 0x7000, wantOK: true},
		{name: "unmap where no table exists reports nothing mapped", unmap: 0x40_3000},
		{name: "unmap of a neighbour in the same table reports nothing mapped", mapVA: 0x40_3000, unmap: 0x40_4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _ := newPageTable(t, 8)
			if tt.mapVA != 0 {
				if err := pt.Map(tt.mapVA, 0x7000, PTEWrite); err != nil {
					t.Fatal(err)
				}
			}
			pa, ok, err := pt.Unmap(tt.unmap)
			if err != nil {
				t.Fatalf("Unmap(%#x): %v", tt.unmap, err)
			}
			if ok != tt.wantOK || pa != tt.wantPA {
				t.Fatalf("Unmap(%#x) = %#x, %v; want %#x, %v", tt.unmap, pa, ok, tt.wantPA, tt.wantOK)
			}
			if pa, _, ok := pt.Lookup(tt.unmap); ok {
				t.Errorf("Lookup(%#x) = %#x after Unmap", tt.unmap, pa)
			}
			if pa, ok, err := pt.Unmap(tt.unmap); ok || err != nil {
				t.Errorf("second Unmap(%#x) = %#x, %v, %v; want nothing mapped", tt.unmap, pa, ok, err)
			}
			// The slot is reusable.
			if err := pt.Map(tt.unmap&^(PageSize-1), 0x9000, 0); err != nil {
				t.Fatalf("Map after Unmap: %v", err)
			}
		})
	}
}

func TestPageTableSetFlags(t *testing.T) {
	tests := []struct {
		name   string
		va     uint64
		flags  uint64
		wantOK bool
	}{
		{name: "set flags keeps the frame and replaces the flags", va: 0x40_3000, flags: PTENoExec | PTEUser, wantOK: true},
		{name: "set flags on an unmapped page reports false", va: 0x40_4000, flags: PTEWrite},
		{name: "set flags where no table exists reports false", va: 0x1_0000_0000, flags: PTEWrite},
		{name: "set flags inside a 2M page reports false", va: 0x60_1000, flags: PTEWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, _ := newPageTable(t, 8)
			if err := pt.Map(0x40_3000, 0x7000, PTEWrite); err != nil {
				t.Fatal(err)
			}
			if err := pt.MapHuge(0x60_0000, 0x80_0000, PTEWrite); err != nil {
				t.Fatal(err)
			}
			wantPA, wantFlags, wantMapped := pt.Lookup(tt.va)
			if got := pt.SetFlags(tt.va, tt.flags); got != tt.wantOK {
				t.Fatalf("SetFlags(%#x) = %v, want %v", tt.va, got, tt.wantOK)
			}
			if tt.wantOK {
				wantFlags = tt.flags | PTEPresent
			}
			pa, flags, ok := pt.Lookup(tt.va)
			if pa != wantPA || flags != wantFlags || ok != wantMapped {
				t.Errorf("Lookup(%#x) = %#x, %#x, %v; want %#x, %#x, %v", tt.va, pa, flags, ok, wantPA, wantFlags, wantMapped)
			}
		})
	}
}

func BenchmarkPageTableMapUnmap(b *testing.B) {
	pt, _ := newPageTable(b, 8)
	for b.Loop() {
		if err := pt.Map(0x40_3000, 0x7000, PTEWrite); err != nil {
			b.Fatal(err)
		}
		if _, _, err := pt.Unmap(0x40_3000); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPageTableGigantic1GPage(t *testing.T) {
	// The API never makes 1 GiB pages, but boot code may hand over tables
	// that have them: Lookup must translate them and 4 KiB and 2 MiB
	// operations inside them must be refused.
	pt, a := newPageTable(t, 8)
	if err := pt.Map(0x4000_0000, 0x1000, 0); err != nil { // creates the PDPT
		t.Fatal(err)
	}
	if _, ok, err := pt.Unmap(0x4000_0000); !ok || err != nil {
		t.Fatalf("Unmap: %v, %v", ok, err)
	}
	pdpt := a.table(a.table(pt.Root)[0] & pteAddrMask)
	pdpt[1] = 0x1_c000_0000 | PTEPresent | PTEHuge | PTEWrite
	tests := []struct {
		name     string
		op       func() error
		wantHuge bool
	}{
		{
			name: "lookup translates inside a 1G page",
			op: func() error {
				pa, flags, ok := pt.Lookup(0x4123_4567)
				if !ok || pa != 0x1_c123_4567 || flags != PTEPresent|PTEHuge|PTEWrite {
					return fmt.Errorf("Lookup = %#x, %#x, %v; want 0x1c1234567, Present|Huge|Write", pa, flags, ok)
				}
				return nil
			},
		},
		{
			name:     "a 4K map inside a 1G page is ErrHugeMapped",
			op:       func() error { return pt.Map(0x4020_0000, 0x1000, 0) },
			wantHuge: true,
		},
		{
			name:     "a 2M map inside a 1G page is ErrHugeMapped",
			op:       func() error { return pt.MapHuge(0x4020_0000, 0x20_0000, 0) },
			wantHuge: true,
		},
		{
			name: "set flags inside a 1G page reports false",
			op: func() error {
				if pt.SetFlags(0x4020_0000, 0) {
					return errors.New("SetFlags succeeded")
				}
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if tt.wantHuge != errors.Is(err, ErrHugeMapped) || !tt.wantHuge && err != nil {
				t.Fatalf("err = %v, want ErrHugeMapped: %v", err, tt.wantHuge)
			}
		})
	}
}

func TestPageTableMapRangeOutOfFrames(t *testing.T) {
	// Two frames beside the PML4: enough for a PDPT and a PD, so the huge
	// page maps but the first 4 KiB page needs a PT that is not there.
	pt, _ := newPageTable(t, 3)
	err := pt.MapRange(0, 0, HugePageSize+PageSize, PTEWrite)
	if !errors.Is(err, ErrNoMemory) {
		t.Fatalf("MapRange err = %v, want ErrNoMemory", err)
	}
	if _, flags, ok := pt.Lookup(0x1000); !ok || flags&PTEHuge == 0 {
		t.Errorf("the huge page mapped before the failure is missing")
	}
}
