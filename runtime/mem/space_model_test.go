package mem

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// pageModel is the obvious implementation of Space: one entry per page of
// the window, the page's protection or -1 when unmapped.
type pageModel struct {
	low  uint64  // address of page 0
	prot []int16 // per page: protection, or -1 for unmapped
}

// modelOf returns the model of the current contents of s.
func modelOf(s *Space) *pageModel {
	m := &pageModel{low: s.low, prot: make([]int16, (s.high-s.low)/PageSize)}
	for i := range m.prot {
		m.prot[i] = -1
	}
	for _, r := range s.Regions() {
		m.set(r.Start, r.End, r.Prot)
	}
	return m
}

// pages returns the page indexes [a, b) that [start, end) covers inside
// the window, with end rounded up to a page.
func (m *pageModel) pages(start, end uint64) (a, b int) {
	end = (end + PageSize - 1) &^ (PageSize - 1)
	top := m.low + uint64(len(m.prot))*PageSize
	start, end = max(start, m.low), min(end, top)
	if start >= end {
		return 0, 0
	}
	return int((start - m.low) / PageSize), int((end - m.low) / PageSize)
}

func (m *pageModel) set(start, end uint64, prot uint8) {
	a, b := m.pages(start, end)
	for i := a; i < b; i++ {
		m.prot[i] = int16(prot)
	}
}

func (m *pageModel) clear(start, end uint64) {
	a, b := m.pages(start, end)
	for i := a; i < b; i++ {
		m.prot[i] = -1
	}
}

// mapped reports whether every page of [start, end) is mapped.
func (m *pageModel) mapped(start, end uint64) bool {
	a, b := m.pages(start, end)
	return !slices.Contains(m.prot[a:b], -1)
}

// free reports whether no page of [start, end) is mapped.
func (m *pageModel) free(start, end uint64) bool {
	a, b := m.pages(start, end)
	for _, p := range m.prot[a:b] {
		if p != -1 {
			return false
		}
	}
	return true
}

// regions returns the canonical region list for the model: maximal runs of
// pages with equal protection. With merging, Space must hold exactly this.
func (m *pageModel) regions() []Region {
	var out []Region
	for i := 0; i < len(m.prot); {
		if m.prot[i] == -1 {
			i++
			continue
		}
		j := i
		for j < len(m.prot) && m.prot[j] == m.prot[i] {
			j++
		}
		out = append(out, Region{m.low + uint64(i)*PageSize, m.low + uint64(j)*PageSize, uint8(m.prot[i])})
		i = j
	}
	return out
}

// matches reports how s differs from the model, if it does: its region
// list must be the canonical one, and Find must agree at every page.
func (m *pageModel) matches(s *Space) error {
	if err := spaceInvariant(s); err != nil {
		return err
	}
	if got, want := s.Regions(), m.regions(); !slices.Equal(got, want) {
		return fmt.Errorf("regions = %s, model has %s", fmtRegions(got), fmtRegions(want))
	}
	for i, p := range m.prot {
		for _, off := range []uint64{0, PageSize - 1} {
			addr := m.low + uint64(i)*PageSize + off
			prot, ok := s.Find(addr)
			if ok != (p != -1) || (ok && int16(prot) != p) {
				return fmt.Errorf("Find(%#x) = %d, %v; model has %d", addr, prot, ok, p)
			}
		}
	}
	return nil
}

// highestFree is the address Choose must return without a usable hint:
// the highest page-aligned start of length free bytes in the window.
func (m *pageModel) highestFree(length uint64) (uint64, bool) {
	n := int(length / PageSize)
	for a := len(m.prot) - n; a >= 0; a-- {
		start := m.low + uint64(a)*PageSize
		if m.free(start, start+length) {
			return start, true
		}
	}
	return 0, false
}

func TestSpaceMatchesPageModel(t *testing.T) {
	const (
		windowPages = 48
		ops         = 5000
	)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			s := new(Space)
			s.Init(spaceLow, pg(windowPages))
			m := modelOf(s)
			// A few protections, so that equal neighbours and merges are
			// frequent.
			prots := []uint8{0, 1, 3, 5}
			// randRange picks a start page a little beyond both ends of the
			// window and a length of up to a quarter of it, sometimes not a
			// whole number of pages.
			randRange := func() (start, length uint64) {
				start = spaceLow + uint64(rng.IntN(windowPages+8))*PageSize - 4*PageSize
				length = uint64(rng.IntN(windowPages/4+1)) * PageSize
				if rng.IntN(8) == 0 {
					length += uint64(rng.IntN(PageSize))
				}
				return start, length
			}
			for op := range ops {
				start, length := randRange()
				prot := prots[rng.IntN(len(prots))]
				end := start + length
				inWindow := start >= spaceLow && end <= pg(windowPages)
				var desc string
				var err, wantErr error
				switch k := rng.IntN(10); {
				case k < 4: // Insert
					desc = fmt.Sprintf("Insert(page %d, %#x, %d)", int64(start-spaceLow)/PageSize, length, prot)
					err = s.Insert(start, length, prot)
					if length == 0 || length%PageSize != 0 || !inWindow {
						wantErr = ErrBadRange
					} else {
						m.set(start, end, prot)
					}
				case k < 6: // Remove
					desc = fmt.Sprintf("Remove(page %d, %#x)", int64(start-spaceLow)/PageSize, length)
					err = s.Remove(start, length)
					m.clear(start, end)
				case k < 9: // Protect
					desc = fmt.Sprintf("Protect(page %d, %#x, %d)", int64(start-spaceLow)/PageSize, length, prot)
					err = s.Protect(start, length, prot)
					roundedEnd := (end + PageSize - 1) &^ (PageSize - 1)
					switch {
					case length == 0:
					case start < spaceLow || roundedEnd > pg(windowPages) || !m.mapped(start, end):
						wantErr = ErrNotMapped
					default:
						m.set(start, end, prot)
					}
				default: // Choose
					length = (length + PageSize - 1) &^ (PageSize - 1)
					if length == 0 {
						length = PageSize
					}
					hint := start
					if rng.IntN(4) == 0 {
						hint = 0
					}
					desc = fmt.Sprintf("Choose(%#x, %#x)", hint, length)
					got, cerr := s.Choose(hint, length)
					want, ok := m.highestFree(length)
					if hint != 0 && hint >= spaceLow && hint+length <= pg(windowPages) && m.free(hint, hint+length) {
						want, ok = hint, true
					}
					switch {
					case !ok && !errors.Is(cerr, ErrNoSpace):
						t.Fatalf("op %d: %s = %#x, %v; want ErrNoSpace", op, desc, got, cerr)
					case ok && (cerr != nil || got != want):
						t.Fatalf("op %d: %s = %#x, %v; want %#x\nregions: %s", op, desc, got, cerr, want, fmtRegions(s.Regions()))
					}
				}
				if !errors.Is(err, wantErr) {
					t.Fatalf("op %d: %s err = %v, want %v\nregions: %s", op, desc, err, wantErr, fmtRegions(s.Regions()))
				}
				if err := m.matches(s); err != nil {
					t.Fatalf("op %d: after %s: %v", op, desc, err)
				}
			}
		})
	}
}
