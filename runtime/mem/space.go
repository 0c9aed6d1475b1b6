package mem

import (
	"errors"
)

// Protection bits of a region, as in mmap's PROT_* (Linux uapi).
const (
	ProtRead  = 1
	ProtWrite = 2
	ProtExec  = 4
)

// Errors from Space, mapped to errno values by the system-call layer.
var (
	ErrNoSpace   = errors.New("mem: no free virtual address range")        // ENOMEM
	ErrTooMany   = errors.New("mem: too many regions")                     // ENOMEM
	ErrBadRange  = errors.New("mem: range outside the user address space") // EINVAL
	ErrNotMapped = errors.New("mem: range is not mapped")                  // ENOMEM
)

// MaxRegions is how many distinct regions a Space holds. Go's runtime makes
// a few hundred; adjacent regions with the same protection are merged.
const MaxRegions = 4096

// Region is a page-aligned range [Start, End) with one protection. A
// region with protection 0 is a reservation: it owns the addresses and no
// memory.
type Region struct {
	Start, End uint64
	Prot       uint8
}

// Space is the process's virtual address space: the regions mmap created,
// sorted and disjoint. Memory is committed lazily: the page-fault handler
// asks Find whether an address may be backed.
type Space struct {
	regions [MaxRegions]Region // sorted by Start, disjoint; [0, n) in use
	n       int                // regions in use
	low     uint64             // first address Space may hand out
	high    uint64             // first address past the space
}

// Init empties the space and sets the window [low, high) that addresses
// are chosen from and hints must fall in.
func (s *Space) Init(low, high uint64) {
	s.n, s.low, s.high = 0, low, high
}

// Regions returns the current regions (for diagnostics and tests).
func (s *Space) Regions() []Region { return s.regions[:s.n] }

// Find returns the protection of the region holding addr.
func (s *Space) Find(addr uint64) (prot uint8, ok bool) {
	i := s.search(addr)
	if i < s.n && s.regions[i].Start <= addr && addr < s.regions[i].End {
		return s.regions[i].Prot, true
	}
	return 0, false
}

// search returns the index of the first region whose End is above addr.
func (s *Space) search(addr uint64) int {
	lo, hi := 0, s.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.regions[m].End <= addr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// free reports whether [start, end) overlaps no region.
func (s *Space) free(start, end uint64) bool {
	i := s.search(start)
	return i == s.n || s.regions[i].Start >= end
}

// Choose picks an address for a new mapping of length bytes: hint when
// the range is inside the window and free, otherwise the highest free
// range below the top of the window.
func (s *Space) Choose(hint, length uint64) (uint64, error) {
	if length == 0 || length%PageSize != 0 {
		return 0, ErrBadRange
	}
	if hint != 0 && hint%PageSize == 0 && hint >= s.low && hint+length <= s.high && hint+length > hint && s.free(hint, hint+length) {
		return hint, nil
	}
	// Top-down first fit over the gaps.
	top := s.high
	for i := s.n - 1; i >= -1; i-- {
		bottom := s.low
		if i >= 0 && s.regions[i].End > bottom {
			bottom = s.regions[i].End
		}
		if top >= bottom && top-bottom >= length {
			return top - length, nil
		}
		if i >= 0 && s.regions[i].Start < top {
			top = s.regions[i].Start
		}
		if top <= s.low {
			break
		}
	}
	return 0, ErrNoSpace
}

// Insert records [start, start+length) with prot, replacing whatever was
// there (MAP_FIXED semantics: the caller releases the memory of the part
// replaced before calling).
func (s *Space) Insert(start, length uint64, prot uint8) error {
	end := start + length
	if start%PageSize != 0 || length%PageSize != 0 || length == 0 || end < start || start < s.low || end > s.high {
		return ErrBadRange
	}
	if err := s.set(start, end, prot); err != nil {
		return err
	}
	return nil
}

// pageEnd returns start+length rounded up to a whole page, as munmap and
// mprotect take lengths, and false if that passes the top of the address
// space.
func pageEnd(start, length uint64) (uint64, bool) {
	end := start + length
	rounded := (end + PageSize - 1) &^ (PageSize - 1)
	return rounded, end >= start && rounded >= end
}

// Remove drops [start, start+length) from the space; parts not mapped are
// ignored and length is rounded up to whole pages, as munmap does.
func (s *Space) Remove(start, length uint64) error {
	end, ok := pageEnd(start, length)
	if start%PageSize != 0 || !ok {
		return ErrBadRange
	}
	// An empty range would otherwise split the region holding start in
	// two equal halves.
	if start == end {
		return nil
	}
	if err := s.cut(start, end); err != nil {
		return err
	}
	return nil
}

// Protect sets prot on [start, start+length), which must be fully mapped;
// length is rounded up to whole pages, as mprotect does.
func (s *Space) Protect(start, length uint64, prot uint8) error {
	end, ok := pageEnd(start, length)
	if start%PageSize != 0 || !ok {
		return ErrBadRange
	}
	// An empty range would otherwise become an empty region.
	if start == end {
		return nil
	}
	// Check coverage first so that a failure changes nothing.
	a := start
	for i := s.search(start); a < end; i++ {
		if i >= s.n || s.regions[i].Start > a {
			return ErrNotMapped
		}
		a = s.regions[i].End
	}
	if err := s.set(start, end, prot); err != nil {
		return err
	}
	return nil
}

// set makes [start, end) one region with prot, replacing whatever was
// there and merging it with touching regions of equal protection. It
// works out the result before changing anything: doing the cut, the
// insertion and the merges one after another could run out of slots
// half-way (leaving a hole) or need a slot the final result does not.
func (s *Space) set(start, end uint64, prot uint8) error {
	i := s.search(start) // first region ending above start
	j := i               // first region starting at or above end
	for j < s.n && s.regions[j].Start < end {
		j++
	}
	// Regions [lo, hi) are replaced by out[:k]: what is kept of
	// regions[i] below start, the new region, what is kept of
	// regions[j-1] above end. Kept parts with prot, and touching
	// neighbours with prot, are absorbed into the new region.
	lo, hi := i, j
	r := Region{start, end, prot}
	var out [3]Region
	k := 0
	switch {
	case i < j && s.regions[i].Start < start && s.regions[i].Prot != prot:
		out[k] = Region{s.regions[i].Start, start, s.regions[i].Prot}
		k++
	case i < j && s.regions[i].Start < start:
		r.Start = s.regions[i].Start
	case i > 0 && s.regions[i-1].End == start && s.regions[i-1].Prot == prot:
		lo = i - 1
		r.Start = s.regions[i-1].Start
	}
	var tail Region
	hasTail := false
	switch {
	case i < j && s.regions[j-1].End > end && s.regions[j-1].Prot != prot:
		tail = Region{end, s.regions[j-1].End, s.regions[j-1].Prot}
		hasTail = true
	case i < j && s.regions[j-1].End > end:
		r.End = s.regions[j-1].End
	case j < s.n && s.regions[j].Start == end && s.regions[j].Prot == prot:
		hi = j + 1
		r.End = s.regions[j].End
	}
	out[k] = r
	k++
	if hasTail {
		out[k] = tail
		k++
	}
	n := s.n - (hi - lo) + k
	if n > MaxRegions {
		return ErrTooMany
	}
	copy(s.regions[lo+k:n], s.regions[hi:s.n])
	copy(s.regions[lo:lo+k], out[:k])
	s.n = n
	return nil
}

// cut removes [start, end) from every region, splitting the ones that
// straddle either edge.
func (s *Space) cut(start, end uint64) error {
	i := s.search(start)
	for i < s.n && s.regions[i].Start < end {
		r := s.regions[i]
		switch {
		case r.Start < start && r.End > end: // straddles both edges: split
			if err := s.insertAt(i+1, Region{end, r.End, r.Prot}); err != nil {
				return err
			}
			s.regions[i].End = start
			return nil
		case r.Start < start: // keeps its head
			s.regions[i].End = start
			i++
		case r.End > end: // keeps its tail
			s.regions[i].Start = end
			return nil
		default: // inside: drop it
			copy(s.regions[i:s.n-1], s.regions[i+1:s.n])
			s.n--
		}
	}
	return nil
}

func (s *Space) insertAt(i int, r Region) error {
	if s.n == MaxRegions {
		return ErrTooMany
	}
	copy(s.regions[i+1:s.n+1], s.regions[i:s.n])
	s.regions[i] = r
	s.n++
	return nil
}
