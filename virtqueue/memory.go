package virtqueue

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// HeapDMA is a DMA implementation over ordinary Go memory, for host-side
// tests: the driver under test gets "physical" addresses from it, and a
// device model (another package, another goroutine) turns them back into
// memory with Slice, exactly as a real device would do DMA.
//
// Physical addresses are synthetic. Every piece of memory HeapDMA knows
// (a region) gets its own range of a fake physical address space, starting
// at 4 GiB (so that a driver that truncates addresses to 32 bits is caught)
// with at least one unmapped page between regions (so that a device that
// runs past a buffer gets an error from Slice, not a neighbour's bytes).
// The offset of an address within its 4096-byte page equals the offset of
// the memory within its virtual page, as with a real page mapping.
//
// Regions come from:
//   - Alloc: fresh zeroed memory, 4096-aligned in virtual memory and
//     aligned as asked in physical memory. It is physically contiguous:
//     Phys accepts any sub-slice of it.
//   - Register: Go heap memory the caller already has (for example a
//     gVisor buffer chunk the driver posts for zero-copy RX). Phys accepts
//     only a sub-slice that does not cross a 4096-byte page boundary,
//     which is the DMA contract (Go heap pages are only virtually
//     contiguous on bare metal): a driver that breaks it fails in tests
//     instead of corrupting memory on a machine.
//   - Phys itself, when AutoRegister is set: unknown memory is registered
//     on the fly, so a driver can post buffers the test never saw.
//
// HeapDMA keeps every region reachable (the GC will not free it) until
// Unregister; Alloc memory is never released, as the DMA contract says.
// All methods are safe for concurrent use. The zero value is ready to use.
type HeapDMA struct {
	// AutoRegister makes Phys register memory it does not know, as
	// Register would, instead of returning ErrNotRegistered. Set it before
	// first use.
	AutoRegister bool

	mu       sync.RWMutex              // guards the fields below
	nextPhys uint64                    // lowest fake physical address not yet given out
	byPhys   []*heapRegion             // every region, sorted by phys (addresses only grow)
	byPage   map[uintptr][]*heapRegion // virtual page number -> regions overlapping that page
}

// heapRegion is one range of Go memory and its fake physical address.
type heapRegion struct {
	phys    uint64  // physical address of buf[0]
	virt    uintptr // virtual address of buf[0]
	buf     []byte  // the memory; holding it keeps it alive
	alloced bool    // from Alloc: physically contiguous across pages
}

// Errors of HeapDMA, wrapped with the addresses involved.
var (
	ErrNotRegistered = errors.New("virtqueue: memory not registered with HeapDMA")
	ErrCrossesPage   = errors.New("virtqueue: Go heap buffer crosses a 4096-byte page boundary")
	ErrNoSuchPhys    = errors.New("virtqueue: physical range not backed by HeapDMA memory")
)

const (
	pageSize     = 4096    // the DMA contract's page (x86 base page)
	heapPhysBase = 1 << 32 // first fake physical address
)

// Alloc returns zeroed memory of size bytes, 4096-aligned in virtual
// memory, whose fake physical address is aligned to align (a power of two;
// at least 4096 is always given).
func (m *HeapDMA) Alloc(size, align int) ([]byte, uint64, error) {
	if size <= 0 {
		return nil, 0, fmt.Errorf("virtqueue: HeapDMA.Alloc of %d bytes", size)
	}
	if align <= 0 || align&(align-1) != 0 {
		return nil, 0, fmt.Errorf("virtqueue: HeapDMA.Alloc alignment %d is not a power of two", align)
	}
	buf := pageAligned(size)

	m.mu.Lock()
	defer m.mu.Unlock()
	phys := m.claim(uint64(max(align, pageSize)), 0, size)
	m.insert(&heapRegion{phys: phys, virt: addrOf(buf), buf: buf, alloced: true})
	return buf, phys, nil
}

// Register makes Go memory b known, so that Phys accepts it and Slice
// resolves it, and returns the physical address of b[0]. Registering memory
// already inside a region returns that region's address.
func (m *HeapDMA) Register(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("virtqueue: HeapDMA.Register of an empty slice")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.register(b), nil
}

// register does Register's work; m.mu is held for writing.
func (m *HeapDMA) register(b []byte) uint64 {
	virt := addrOf(b)
	if r := m.find(virt, len(b)); r != nil {
		return r.phys + uint64(virt-r.virt)
	}
	phys := m.claim(pageSize, uint64(virt&(pageSize-1)), len(b))
	m.insert(&heapRegion{phys: phys, virt: virt, buf: b[:len(b):len(b)]})
	return phys
}

// Unregister forgets the region registered for exactly b (same start and
// length) by Register or AutoRegister, letting the GC reclaim it. Its
// physical addresses are not reused. Alloc memory cannot be unregistered.
func (m *HeapDMA) Unregister(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("virtqueue: HeapDMA.Unregister of an empty slice")
	}
	virt := addrOf(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range m.byPhys {
		if r.virt != virt || len(r.buf) != len(b) || r.alloced {
			continue
		}
		m.byPhys = append(m.byPhys[:i], m.byPhys[i+1:]...)
		for p := virt / pageSize; p <= (virt+uintptr(len(b))-1)/pageSize; p++ {
			rs := m.byPage[p]
			for j := range rs {
				if rs[j] == r {
					rs = append(rs[:j], rs[j+1:]...)
					break
				}
			}
			if len(rs) == 0 {
				delete(m.byPage, p)
			} else {
				m.byPage[p] = rs
			}
		}
		return nil
	}
	return fmt.Errorf("virtqueue: HeapDMA.Unregister %d bytes at %#x: %w", len(b), virt, ErrNotRegistered)
}

// Phys returns the fake physical address of b[0]. b must lie in one region
// and, unless that region came from Alloc, within one 4096-byte page.
func (m *HeapDMA) Phys(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("virtqueue: HeapDMA.Phys of an empty slice")
	}
	virt := addrOf(b)
	m.mu.RLock()
	r := m.find(virt, len(b))
	m.mu.RUnlock()
	if r == nil {
		if !m.AutoRegister {
			return 0, fmt.Errorf("virtqueue: HeapDMA.Phys of %d bytes at %#x: %w", len(b), virt, ErrNotRegistered)
		}
		m.mu.Lock()
		m.register(b)
		r = m.find(virt, len(b))
		m.mu.Unlock()
	}
	if !r.alloced && int(virt&(pageSize-1))+len(b) > pageSize {
		return 0, fmt.Errorf("virtqueue: HeapDMA.Phys of %d bytes at %#x: %w", len(b), virt, ErrCrossesPage)
	}
	return r.phys + uint64(virt-r.virt), nil
}

// Slice returns the n bytes of memory at physical address phys, for a
// device model to read or write (it is the memory itself, not a copy). The
// range must lie inside one region; anything else is ErrNoSuchPhys, as a
// DMA to unbacked memory would fail on a machine.
func (m *HeapDMA) Slice(phys uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("virtqueue: HeapDMA.Slice of %d bytes", n)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := sort.Search(len(m.byPhys), func(i int) bool { return m.byPhys[i].phys > phys }) - 1
	if i >= 0 {
		r := m.byPhys[i]
		if off := phys - r.phys; off <= uint64(len(r.buf)) && uint64(n) <= uint64(len(r.buf))-off {
			return r.buf[off : off+uint64(n) : off+uint64(n)], nil
		}
	}
	return nil, fmt.Errorf("virtqueue: HeapDMA.Slice of %d bytes at %#x: %w", n, phys, ErrNoSuchPhys)
}

// Regions returns the number of regions (Alloc and registered), for tests
// that check that registrations do not pile up.
func (m *HeapDMA) Regions() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byPhys)
}

// claim reserves size bytes of physical address space whose first address
// is pageOff past an align-aligned boundary; m.mu is held for writing.
func (m *HeapDMA) claim(align, pageOff uint64, size int) uint64 {
	if m.nextPhys == 0 {
		m.nextPhys = heapPhysBase
	}
	phys := (m.nextPhys+align-1)&^(align-1) + pageOff
	// Leave at least one unbacked page before the next region.
	m.nextPhys = (phys+uint64(size)+pageSize-1)&^(pageSize-1) + pageSize
	return phys
}

// insert adds r to both indexes; m.mu is held for writing. Physical
// addresses only grow, so appending keeps byPhys sorted.
func (m *HeapDMA) insert(r *heapRegion) {
	m.byPhys = append(m.byPhys, r)
	if m.byPage == nil {
		m.byPage = make(map[uintptr][]*heapRegion)
	}
	for p := r.virt / pageSize; p <= (r.virt+uintptr(len(r.buf))-1)/pageSize; p++ {
		m.byPage[p] = append(m.byPage[p], r)
	}
}

// find returns a region holding all of [virt, virt+n), or nil; m.mu is
// held.
func (m *HeapDMA) find(virt uintptr, n int) *heapRegion {
	for _, r := range m.byPage[virt/pageSize] {
		if virt >= r.virt && virt-r.virt+uintptr(n) <= uintptr(len(r.buf)) {
			return r
		}
	}
	return nil
}
