package mem

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// Test window: pages are numbered from spaceLow.
const (
	spaceLow  = 0x10_0000_0000
	spaceHigh = spaceLow + 64*PageSize
)

// pg is the address of page n of the test window.
func pg(n uint64) uint64 { return spaceLow + n*PageSize }

// rg is the region of pages [a, b) with prot.
func rg(a, b uint64, prot uint8) Region { return Region{pg(a), pg(b), prot} }

// newSpace returns a space over the test window holding regions, which
// are inserted in order.
func newSpace(t *testing.T, regions ...Region) *Space {
	t.Helper()
	s := new(Space)
	s.Init(spaceLow, spaceHigh)
	for _, r := range regions {
		if err := s.Insert(r.Start, r.End-r.Start, r.Prot); err != nil {
			t.Fatalf("setup Insert %v: %v", r, err)
		}
	}
	return s
}

// checkSpace fails the test if the regions of s break an invariant: sorted,
// disjoint, non-empty, page aligned, inside the window, and no two touching
// regions with equal protection (they would have been merged).
func checkSpace(t *testing.T, s *Space) {
	t.Helper()
	if err := spaceInvariant(s); err != nil {
		t.Fatalf("%v\nregions: %s", err, fmtRegions(s.Regions()))
	}
}

func spaceInvariant(s *Space) error {
	rs := s.Regions()
	for i, r := range rs {
		switch {
		case r.Start >= r.End:
			return fmt.Errorf("region %d %v is empty", i, r)
		case r.Start%PageSize != 0 || r.End%PageSize != 0:
			return fmt.Errorf("region %d %v is not page aligned", i, r)
		case r.Start < s.low || r.End > s.high:
			return fmt.Errorf("region %d %v is outside the window", i, r)
		}
		if i == 0 {
			continue
		}
		p := rs[i-1]
		switch {
		case p.End > r.Start:
			return fmt.Errorf("regions %d %v and %d %v overlap or are unsorted", i-1, p, i, r)
		case p.End == r.Start && p.Prot == r.Prot:
			return fmt.Errorf("regions %d %v and %d %v touch with equal protection and were not merged", i-1, p, i, r)
		}
	}
	return nil
}

// fmtRegions prints regions as page numbers of the test window.
func fmtRegions(rs []Region) string {
	s := "["
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		if r.Start >= spaceLow {
			s += fmt.Sprintf("%d-%d:%d", (r.Start-spaceLow)/PageSize, (r.End-spaceLow)/PageSize, r.Prot)
		} else {
			s += fmt.Sprintf("%#x-%#x:%d", r.Start, r.End, r.Prot)
		}
	}
	return s + "]"
}

// wantRegions fails the test unless s holds exactly want.
func wantRegions(t *testing.T, s *Space, want []Region) {
	t.Helper()
	checkSpace(t, s)
	if got := s.Regions(); !slices.Equal(got, want) {
		t.Errorf("regions = %s, want %s", fmtRegions(got), fmtRegions(want))
	}
}

func TestSpaceChoose(t *testing.T) {
	tests := []struct {
		name    string
		regions []Region
		hint    uint64
		length  uint64
		want    uint64
		wantErr error
	}{
		{
			name:   "an empty space hands out the top of the window",
			length: 4 * PageSize,
			want:   pg(60),
		},
		{
			name:    "Choose finds the highest gap that fits",
			regions: []Region{rg(2, 10, 3), rg(14, 20, 3), rg(22, 60, 1), rg(62, 64, 1)},
			length:  3 * PageSize,
			want:    pg(17 - 6), // gap [10, 14) is the highest that holds 3 pages
		},
		{
			name:    "a gap of exactly the length fits",
			regions: []Region{rg(0, 10, 3), rg(14, 64, 3)},
			length:  4 * PageSize,
			want:    pg(10),
		},
		{
			name:    "the gap at the bottom of the window is used last",
			regions: []Region{rg(5, 64, 1)},
			length:  5 * PageSize,
			want:    pg(0),
		},
		{
			name:    "a full window is ErrNoSpace",
			regions: []Region{rg(0, 30, 1), rg(30, 64, 3)},
			length:  PageSize,
			wantErr: ErrNoSpace,
		},
		{
			name:    "no gap large enough is ErrNoSpace",
			regions: []Region{rg(1, 20, 1), rg(22, 40, 3), rg(42, 63, 1)},
			length:  3 * PageSize,
			wantErr: ErrNoSpace,
		},
		{
			name:    "a length larger than the window is ErrNoSpace",
			length:  65 * PageSize,
			wantErr: ErrNoSpace,
		},
		{
			name:    "hint is honoured when free and inside the window",
			regions: []Region{rg(10, 20, 3)},
			hint:    pg(4), length: 6 * PageSize,
			want: pg(4),
		},
		{
			name:    "a hint overlapping a region is ignored",
			regions: []Region{rg(10, 20, 3)},
			hint:    pg(5), length: 6 * PageSize,
			want: pg(58),
		},
		{
			name:   "a hint below the window is ignored",
			hint:   spaceLow - PageSize,
			length: PageSize,
			want:   pg(63),
		},
		{
			name:   "a hint whose end is past the window is ignored",
			hint:   pg(62),
			length: 4 * PageSize,
			want:   pg(60),
		},
		{
			name:   "an unaligned hint is ignored",
			hint:   pg(3) + 1,
			length: PageSize,
			want:   pg(63),
		},
		{
			name:   "a hint whose end overflows is ignored",
			hint:   ^uint64(0) &^ (PageSize - 1),
			length: 2 * PageSize,
			want:   pg(62),
		},
		{name: "a zero length is ErrBadRange", length: 0, wantErr: ErrBadRange},
		{name: "an unaligned length is ErrBadRange", length: PageSize + 1, wantErr: ErrBadRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpace(t, tt.regions...)
			before := slices.Clone(s.Regions())
			got, err := s.Choose(tt.hint, tt.length)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Choose(%#x, %#x) = %#x, %v; want %v", tt.hint, tt.length, got, err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Choose(%#x, %#x) = %#x, %v; want %#x", tt.hint, tt.length, got, err, tt.want)
			}
			// Choose only looks.
			wantRegions(t, s, before)
		})
	}
}

func TestSpaceInsert(t *testing.T) {
	tests := []struct {
		name    string
		regions []Region
		insert  Region
		want    []Region
	}{
		{
			name:   "an insert into an empty space makes one region",
			insert: rg(3, 5, 3),
			want:   []Region{rg(3, 5, 3)},
		},
		{
			name:    "fixed insert over the middle of a region splits it in three",
			regions: []Region{rg(0, 10, 3)},
			insert:  rg(4, 6, 1),
			want:    []Region{rg(0, 4, 3), rg(4, 6, 1), rg(6, 10, 3)},
		},
		{
			name:    "fixed insert with the same protection inside a region leaves it whole",
			regions: []Region{rg(0, 10, 3)},
			insert:  rg(4, 6, 3),
			want:    []Region{rg(0, 10, 3)},
		},
		{
			name:    "adjacent equal regions merge",
			regions: []Region{rg(0, 4, 3), rg(8, 12, 3)},
			insert:  rg(4, 8, 3),
			want:    []Region{rg(0, 12, 3)},
		},
		{
			name:    "a region touching an equal one below merges with it",
			regions: []Region{rg(0, 4, 3)},
			insert:  rg(4, 6, 3),
			want:    []Region{rg(0, 6, 3)},
		},
		{
			name:    "a region touching an equal one above merges with it",
			regions: []Region{rg(6, 9, 1)},
			insert:  rg(4, 6, 1),
			want:    []Region{rg(4, 9, 1)},
		},
		{
			name:    "adjacent regions with different protection stay apart",
			regions: []Region{rg(0, 4, 3), rg(8, 12, 1)},
			insert:  rg(4, 8, 0),
			want:    []Region{rg(0, 4, 3), rg(4, 8, 0), rg(8, 12, 1)},
		},
		{
			name:    "fixed insert over several regions replaces them and trims the edges",
			regions: []Region{rg(0, 4, 1), rg(5, 7, 3), rg(8, 9, 0), rg(10, 14, 5)},
			insert:  rg(2, 12, 3),
			want:    []Region{rg(0, 2, 1), rg(2, 12, 3), rg(12, 14, 5)},
		},
		{
			name:    "fixed insert over the trimmed edges merges with equal ones",
			regions: []Region{rg(0, 4, 3), rg(5, 7, 1), rg(10, 14, 3)},
			insert:  rg(2, 12, 3),
			want:    []Region{rg(0, 14, 3)},
		},
		{
			name:    "fixed insert exactly over a region replaces its protection",
			regions: []Region{rg(0, 4, 1), rg(4, 8, 3), rg(8, 12, 1)},
			insert:  rg(4, 8, 1),
			want:    []Region{rg(0, 12, 1)},
		},
		{
			name:   "the whole window can be inserted",
			insert: rg(0, 64, 7),
			want:   []Region{rg(0, 64, 7)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpace(t, tt.regions...)
			if err := s.Insert(tt.insert.Start, tt.insert.End-tt.insert.Start, tt.insert.Prot); err != nil {
				t.Fatalf("Insert: %v", err)
			}
			wantRegions(t, s, tt.want)
		})
	}
}

func TestSpaceInsertRejectsBadRanges(t *testing.T) {
	tests := []struct {
		name          string
		start, length uint64
	}{
		{"an unaligned start is ErrBadRange", pg(1) + 8, PageSize},
		{"an unaligned length is ErrBadRange", pg(1), PageSize + 8},
		{"a zero length is ErrBadRange", pg(1), 0},
		{"a start below the window is ErrBadRange", spaceLow - PageSize, 2 * PageSize},
		{"an end past the window is ErrBadRange", pg(63), 2 * PageSize},
		{"a wrapping range is ErrBadRange", pg(1), ^uint64(0) &^ (PageSize - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpace(t, rg(0, 4, 3))
			if err := s.Insert(tt.start, tt.length, 1); !errors.Is(err, ErrBadRange) {
				t.Fatalf("Insert(%#x, %#x) err = %v, want ErrBadRange", tt.start, tt.length, err)
			}
			wantRegions(t, s, []Region{rg(0, 4, 3)})
		})
	}
}

func TestSpaceRemove(t *testing.T) {
	tests := []struct {
		name          string
		regions       []Region
		start, length uint64
		want          []Region
		wantErr       error
	}{
		{
			name:    "remove of the middle of a region splits it in two",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: 2 * PageSize,
			want: []Region{rg(0, 4, 3), rg(6, 10, 3)},
		},
		{
			name:    "remove across regions and gaps drops what it covers and ignores the gaps",
			regions: []Region{rg(0, 4, 1), rg(5, 7, 3), rg(8, 9, 0), rg(10, 14, 5)},
			start:   pg(2), length: 10 * PageSize,
			want: []Region{rg(0, 2, 1), rg(12, 14, 5)},
		},
		{
			name:    "remove of an unmapped range changes nothing",
			regions: []Region{rg(0, 4, 1)},
			start:   pg(10), length: 4 * PageSize,
			want: []Region{rg(0, 4, 1)},
		},
		{
			name:    "remove beyond the window is allowed and ignored",
			regions: []Region{rg(60, 64, 1)},
			start:   pg(62), length: 100 * PageSize,
			want: []Region{rg(60, 62, 1)},
		},
		{
			name:    "remove rounds an unaligned length up to whole pages, as munmap does",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: PageSize + 1,
			want: []Region{rg(0, 4, 3), rg(6, 10, 3)},
		},
		{
			name:    "remove of zero length changes nothing",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: 0,
			want: []Region{rg(0, 10, 3)},
		},
		{
			name:    "remove at an unaligned start is ErrBadRange",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4) + 1, length: PageSize,
			want:    []Region{rg(0, 10, 3)},
			wantErr: ErrBadRange,
		},
		{
			name:    "remove of a wrapping range is ErrBadRange",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: ^uint64(0) &^ (PageSize - 1),
			want:    []Region{rg(0, 10, 3)},
			wantErr: ErrBadRange,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpace(t, tt.regions...)
			err := s.Remove(tt.start, tt.length)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Remove(%#x, %#x) err = %v, want %v", tt.start, tt.length, err, tt.wantErr)
			}
			wantRegions(t, s, tt.want)
		})
	}
}

func TestSpaceProtect(t *testing.T) {
	tests := []struct {
		name          string
		regions       []Region
		start, length uint64
		prot          uint8
		want          []Region
		wantErr       error
	}{
		{
			name:    "protect of the middle of a region splits it in three",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: 2 * PageSize, prot: 1,
			want: []Region{rg(0, 4, 3), rg(4, 6, 1), rg(6, 10, 3)},
		},
		{
			name:    "protect across touching regions makes one region",
			regions: []Region{rg(0, 4, 1), rg(4, 8, 3), rg(8, 12, 0)},
			start:   pg(2), length: 8 * PageSize, prot: 5,
			want: []Region{rg(0, 2, 1), rg(2, 10, 5), rg(10, 12, 0)},
		},
		{
			name:    "protect that equals the neighbours merges them",
			regions: []Region{rg(0, 4, 3), rg(4, 8, 1), rg(8, 12, 3)},
			start:   pg(4), length: 4 * PageSize, prot: 3,
			want: []Region{rg(0, 12, 3)},
		},
		{
			name:    "protect with the protection a region already has changes nothing",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: 2 * PageSize, prot: 3,
			want: []Region{rg(0, 10, 3)},
		},
		{
			name:    "protect of a partly unmapped range fails and changes nothing",
			regions: []Region{rg(0, 4, 3), rg(5, 8, 1)},
			start:   pg(2), length: 4 * PageSize, prot: 0,
			want:    []Region{rg(0, 4, 3), rg(5, 8, 1)},
			wantErr: ErrNotMapped,
		},
		{
			name:    "protect running past the last region fails and changes nothing",
			regions: []Region{rg(0, 4, 3)},
			start:   pg(2), length: 4 * PageSize, prot: 0,
			want:    []Region{rg(0, 4, 3)},
			wantErr: ErrNotMapped,
		},
		{
			name:    "protect starting in a gap fails and changes nothing",
			regions: []Region{rg(4, 8, 3)},
			start:   pg(2), length: 4 * PageSize, prot: 0,
			want:    []Region{rg(4, 8, 3)},
			wantErr: ErrNotMapped,
		},
		{
			name:    "protect rounds an unaligned length up to whole pages, as mprotect does",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: PageSize + 1, prot: 1,
			want: []Region{rg(0, 4, 3), rg(4, 6, 1), rg(6, 10, 3)},
		},
		{
			name:    "protect of zero length changes nothing",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4), length: 0, prot: 1,
			want: []Region{rg(0, 10, 3)},
		},
		{
			name:    "protect at an unaligned start is ErrBadRange",
			regions: []Region{rg(0, 10, 3)},
			start:   pg(4) + 1, length: PageSize, prot: 1,
			want:    []Region{rg(0, 10, 3)},
			wantErr: ErrBadRange,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpace(t, tt.regions...)
			err := s.Protect(tt.start, tt.length, tt.prot)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Protect(%#x, %#x, %d) err = %v, want %v", tt.start, tt.length, tt.prot, err, tt.wantErr)
			}
			wantRegions(t, s, tt.want)
		})
	}
}

func TestSpaceFind(t *testing.T) {
	s := newSpace(t, rg(2, 4, 3), rg(4, 6, 0), rg(10, 11, 5))
	tests := []struct {
		name     string
		addr     uint64
		wantProt uint8
		wantOK   bool
	}{
		{"find below every region fails", pg(0), 0, false},
		{"find at a region's first byte succeeds", pg(2), 3, true},
		{"find at a region's last byte succeeds", pg(4) - 1, 3, true},
		{"find at the boundary of touching regions sees the upper one", pg(4), 0, true},
		{"find in a reservation succeeds with protection 0", pg(5) + 123, 0, true},
		{"find in a gap fails", pg(7), 0, false},
		{"find at a region's end fails", pg(11), 0, false},
		{"find past the window fails", spaceHigh + PageSize, 0, false},
		{"find below the window fails", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prot, ok := s.Find(tt.addr)
			if prot != tt.wantProt || ok != tt.wantOK {
				t.Errorf("Find(%#x) = %d, %v; want %d, %v", tt.addr, prot, ok, tt.wantProt, tt.wantOK)
			}
		})
	}
}

func TestSpaceInitEmpties(t *testing.T) {
	s := newSpace(t, rg(0, 4, 3))
	s.Init(spaceLow, spaceHigh)
	wantRegions(t, s, nil)
	if _, ok := s.Find(pg(1)); ok {
		t.Error("Find succeeds after Init")
	}
}

func TestSpaceCapacity(t *testing.T) {
	// bigStart is the first page of the large region with protection 5
	// that cases with big set add above the small regions: splitting it
	// needs two more slots.
	const bigStart = 2 * MaxRegions
	tests := []struct {
		name    string
		big     bool                 // add the large region at bigStart
		free    int                  // region slots left free by the setup
		do      func(s *Space) error // the operation under test
		model   func(m *pageModel)   // its effect, when it succeeds
		wantErr error
	}{
		{
			name:    "an insert in a gap needing a new slot at capacity is ErrTooMany and changes nothing",
			do:      func(s *Space) error { return s.Insert(pg(2*MaxRegions-1), PageSize, 0) },
			wantErr: ErrTooMany,
		},
		{
			name:    "a remove splitting a region at capacity is ErrTooMany and changes nothing",
			big:     true,
			do:      func(s *Space) error { return s.Remove(pg(bigStart+10), PageSize) },
			wantErr: ErrTooMany,
		},
		{
			name:    "an insert over the middle of a region at capacity is ErrTooMany and changes nothing",
			big:     true,
			do:      func(s *Space) error { return s.Insert(pg(bigStart+10), 8*PageSize, 1) },
			wantErr: ErrTooMany,
		},
		{
			name:    "a protect of the middle of a region at capacity is ErrTooMany and changes nothing",
			big:     true,
			do:      func(s *Space) error { return s.Protect(pg(bigStart+10), 8*PageSize, 1) },
			wantErr: ErrTooMany,
		},
		{
			name:    "an insert over the middle of a region with one slot free is ErrTooMany and changes nothing",
			big:     true,
			free:    1,
			do:      func(s *Space) error { return s.Insert(pg(bigStart+10), 8*PageSize, 1) },
			wantErr: ErrTooMany,
		},
		{
			name:    "a protect of the middle of a region with one slot free is ErrTooMany and changes nothing",
			big:     true,
			free:    1,
			do:      func(s *Space) error { return s.Protect(pg(bigStart+10), 8*PageSize, 1) },
			wantErr: ErrTooMany,
		},
		{
			name:  "a protect of the middle of a region with two slots free succeeds",
			big:   true,
			free:  2,
			do:    func(s *Space) error { return s.Protect(pg(bigStart+10), 8*PageSize, 1) },
			model: func(m *pageModel) { m.set(pg(bigStart+10), pg(bigStart+18), 1) },
		},
		{
			name:    "an insert over a gap and a region's head at capacity is ErrTooMany and changes nothing",
			big:     true,
			do:      func(s *Space) error { return s.Insert(pg(bigStart-3), 4*PageSize, 0) },
			wantErr: ErrTooMany,
		},
		{
			name:  "an insert with a region's own protection inside it at capacity succeeds",
			big:   true,
			do:    func(s *Space) error { return s.Insert(pg(bigStart+10), 8*PageSize, 5) },
			model: func(m *pageModel) {},
		},
		{
			name:  "a protect with a region's own protection at capacity succeeds",
			big:   true,
			do:    func(s *Space) error { return s.Protect(pg(bigStart+10), 8*PageSize, 5) },
			model: func(m *pageModel) {},
		},
		{
			name: "an insert at capacity that only extends an equal neighbour succeeds",
			// Page 1 lies between region 0 (prot 1) and region 1 (prot 3).
			do:    func(s *Space) error { return s.Insert(pg(1), PageSize, 1) },
			model: func(m *pageModel) { m.set(pg(1), pg(2), 1) },
		},
		{
			name: "an insert at capacity that bridges two equal neighbours succeeds",
			// Pages 2 and 6 have prot 3, page 4 prot 1: filling 3..6 with 3
			// drops page 4's region and joins the other two.
			do:    func(s *Space) error { return s.Insert(pg(3), 3*PageSize, 3) },
			model: func(m *pageModel) { m.set(pg(3), pg(6), 3) },
		},
		{
			name: "an insert at capacity over a region's tail that merges with the next region succeeds",
			// Region 1 (prot 3, page 2) grows to pages 2..3 by a merge with
			// no new slot; then prot 1 over pages 3..4 trims it and merges
			// into region 2 (prot 1, page 4).
			do: func(s *Space) error {
				if err := s.Insert(pg(3), PageSize, 3); err != nil {
					return err
				}
				return s.Insert(pg(3), PageSize, 1)
			},
			model: func(m *pageModel) { m.set(pg(3), pg(4), 1) },
		},
		{
			name:  "a remove at capacity of whole regions succeeds",
			do:    func(s *Space) error { return s.Remove(pg(0), 5*PageSize) },
			model: func(m *pageModel) { m.clear(pg(0), pg(5)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := new(Space)
			s.Init(spaceLow, spaceLow+(2*MaxRegions+64)*PageSize)
			// One-page regions at every even page with alternating
			// protection 1 and 3, so that none merge.
			n := uint64(MaxRegions - tt.free)
			if tt.big {
				n--
			}
			for i := range n {
				if err := s.Insert(pg(2*i), PageSize, uint8(1+2*(i%2))); err != nil {
					t.Fatalf("setup Insert of region %d: %v", i, err)
				}
			}
			if tt.big {
				if err := s.Insert(pg(bigStart), 64*PageSize, 5); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			if len(s.Regions()) != MaxRegions-tt.free {
				t.Fatalf("setup made %d regions, want %d", len(s.Regions()), MaxRegions-tt.free)
			}
			before := slices.Clone(s.Regions())
			m := modelOf(s)
			err := tt.do(s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			checkSpace(t, s)
			if err != nil {
				if !slices.Equal(s.Regions(), before) {
					t.Errorf("a failed operation changed the regions (%d before, %d after)", len(before), len(s.Regions()))
				}
				return
			}
			tt.model(m)
			if err := m.matches(s); err != nil {
				t.Error(err)
			}
		})
	}
}

func BenchmarkSpaceFind(b *testing.B) {
	s := new(Space)
	s.Init(spaceLow, spaceLow+2*MaxRegions*PageSize)
	for i := range uint64(1000) {
		if err := s.Insert(pg(2*i), PageSize, uint8(1+2*(i%2))); err != nil {
			b.Fatal(err)
		}
	}
	var a uint64
	for b.Loop() {
		s.Find(pg(a % 2000))
		a += 7
	}
}
