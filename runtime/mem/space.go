package mem

import (
	"errors"
	"fmt"
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
		return 0, fmt.Errorf("mem: length %#x: %w", length, ErrBadRange)
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
		return fmt.Errorf("mem: insert [%#x, %#x): %w", start, end, ErrBadRange)
	}
	if err := s.cut(start, end); err != nil {
		return err
	}
	i := s.search(start)
	if err := s.insertAt(i, Region{start, end, prot}); err != nil {
		return err
	}
	s.merge(i)
	return nil
}

// Remove drops [start, start+length) from the space; parts not mapped are
// ignored, as munmap does.
func (s *Space) Remove(start, length uint64) error {
	end := start + length
	if start%PageSize != 0 || end < start {
		return fmt.Errorf("mem: remove [%#x, %#x): %w", start, end, ErrBadRange)
	}
	return s.cut(start, end)
}

// Protect sets prot on [start, start+length), which must be fully mapped.
func (s *Space) Protect(start, length uint64, prot uint8) error {
	end := start + length
	if start%PageSize != 0 || end < start {
		return fmt.Errorf("mem: protect [%#x, %#x): %w", start, end, ErrBadRange)
	}
	// Check coverage first so that a failure changes nothing.
	a := start
	for i := s.search(start); a < end; i++ {
		if i >= s.n || s.regions[i].Start > a {
			return fmt.Errorf("mem: protect [%#x, %#x): %w", start, end, ErrNotMapped)
		}
		a = s.regions[i].End
	}
	if err := s.cut(start, end); err != nil {
		return err
	}
	i := s.search(start)
	if err := s.insertAt(i, Region{start, end, prot}); err != nil {
		return err
	}
	s.merge(i)
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

// merge joins region i with equal neighbours that touch it.
func (s *Space) merge(i int) {
	if i+1 < s.n && s.regions[i].End == s.regions[i+1].Start && s.regions[i].Prot == s.regions[i+1].Prot {
		s.regions[i].End = s.regions[i+1].End
		copy(s.regions[i+1:s.n-1], s.regions[i+2:s.n])
		s.n--
	}
	if i > 0 && s.regions[i-1].End == s.regions[i].Start && s.regions[i-1].Prot == s.regions[i].Prot {
		s.regions[i-1].End = s.regions[i].End
		copy(s.regions[i:s.n-1], s.regions[i+1:s.n])
		s.n--
	}
}
