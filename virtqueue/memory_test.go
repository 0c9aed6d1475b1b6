package virtqueue

import (
	"errors"
	"sync"
	"testing"
	"unsafe"
)

func TestHeapDMAAllocIsAlignedZeroedAndResolvable(t *testing.T) {
	tests := []struct {
		name        string
		size, align int
		wantErr     bool
	}{
		{"one byte", 1, 1, false},
		{"a page", 4096, 4096, false},
		{"16-aligned table", 4096 * 3, 16, false},
		{"64 KiB alignment", 100, 1 << 16, false},
		{"zero size", 0, 16, true},
		{"alignment not a power of two", 64, 24, true},
		{"zero alignment", 64, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m HeapDMA
			buf, phys, err := m.Alloc(tt.size, tt.align)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Alloc succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(buf) != tt.size || phys%uint64(tt.align) != 0 || phys%4096 != 0 {
				t.Fatalf("len %d phys %#x", len(buf), phys)
			}
			if uintptr(unsafe.Pointer(&buf[0]))%4096 != 0 {
				t.Fatal("not page-aligned in virtual memory")
			}
			if phys < 1<<32 {
				t.Fatalf("phys %#x below 4 GiB", phys)
			}
			for _, b := range buf {
				if b != 0 {
					t.Fatal("not zeroed")
				}
			}
			// Any sub-slice resolves, across pages too.
			if p, err := m.Phys(buf[tt.size/2:]); err != nil || p != phys+uint64(tt.size/2) {
				t.Fatalf("Phys of the upper half = %#x, %v", p, err)
			}
			s, err := m.Slice(phys, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			s[tt.size-1] = 0xaa
			if buf[tt.size-1] != 0xaa {
				t.Fatal("Slice is not the same memory")
			}
			if _, err := m.Slice(phys, tt.size+1); !errors.Is(err, ErrNoSuchPhys) {
				t.Fatalf("Slice past the end: %v", err)
			}
		})
	}
}

func TestHeapDMARegisteredHeapMemoryFollowsThePageRule(t *testing.T) {
	var m HeapDMA
	raw, _, _ := m.Alloc(3*4096, 4096) // page-aligned memory to carve from
	heap := make([]byte, 3*4096)
	copy(heap, raw) // only to have a Go heap buffer; its alignment is unknown
	off := int(-uintptr(unsafe.Pointer(&heap[0])) & 4095)
	page := heap[off : off+4096]

	phys, err := m.Register(page)
	if err != nil {
		t.Fatal(err)
	}
	if phys%4096 != 0 {
		t.Fatalf("page-aligned memory got phys %#x", phys)
	}
	tests := []struct {
		name    string
		b       []byte
		want    uint64
		wantErr error
	}{
		{"the page", page, phys, nil},
		{"inside the page", page[100:200], phys + 100, nil},
		{"last byte", page[4095:], phys + 4095, nil},
		{"past the registered range", heap[off+100 : off+4097], 0, ErrNotRegistered},
		{"unknown memory", make([]byte, 10), 0, ErrNotRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Phys(tt.b)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("Phys = %#x, %v; want %#x, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("registered range crossing a page is refused by Phys", func(t *testing.T) {
		two := heap[off+4000 : off+4200]
		if _, err := m.Register(two); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Phys(two); !errors.Is(err, ErrCrossesPage) {
			t.Fatalf("Phys: %v, want ErrCrossesPage", err)
		}
		if _, err := m.Phys(two[100:]); err != nil { // on the second page only
			t.Fatalf("Phys of the part on one page: %v", err)
		}
	})
	t.Run("page offset is preserved", func(t *testing.T) {
		b := make([]byte, 64)
		p, err := m.Register(b)
		if err != nil || uintptr(p)%4096 != uintptr(unsafe.Pointer(&b[0]))%4096 {
			t.Fatalf("phys %#x for %p: %v", p, &b[0], err)
		}
		if again, _ := m.Register(b[10:20]); again != p+10 {
			t.Fatalf("registering a part again gave %#x, want %#x", again, p+10)
		}
	})
	t.Run("gaps between regions are unbacked", func(t *testing.T) {
		if _, err := m.Slice(phys+4096, 1); !errors.Is(err, ErrNoSuchPhys) {
			t.Fatalf("Slice in a gap: %v", err)
		}
		if _, err := m.Slice(0, 1); !errors.Is(err, ErrNoSuchPhys) {
			t.Fatalf("Slice at 0: %v", err)
		}
	})
	t.Run("unregister forgets", func(t *testing.T) {
		n := m.Regions()
		if err := m.Unregister(page); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Phys(page); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("Phys after Unregister: %v", err)
		}
		if _, err := m.Slice(phys, 1); !errors.Is(err, ErrNoSuchPhys) {
			t.Fatalf("Slice after Unregister: %v", err)
		}
		if m.Regions() != n-1 {
			t.Fatalf("regions %d, want %d", m.Regions(), n-1)
		}
		if err := m.Unregister(raw); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("Unregister of Alloc memory: %v", err)
		}
	})
}

func TestHeapDMAAutoRegisterServesUnknownBuffers(t *testing.T) {
	m := &HeapDMA{AutoRegister: true}
	b := make([]byte, 128) // a 128-byte size class never straddles a 4096-byte page
	p, err := m.Phys(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Phys(b[1:]); again != p+1 || m.Regions() != 1 {
		t.Fatalf("second Phys %#x (want %#x), %d regions", again, p+1, m.Regions())
	}
	s, err := m.Slice(p, 128)
	if err != nil || &s[0] != &b[0] {
		t.Fatalf("Slice: %v", err)
	}
}

func TestHeapDMAIsSafeForConcurrentUse(t *testing.T) {
	m := &HeapDMA{AutoRegister: true}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				b := make([]byte, 32) // size class 32: never straddles a page
				p, err := m.Phys(b)
				if err != nil {
					t.Error(err)
					return
				}
				s, err := m.Slice(p, 32)
				if err != nil {
					t.Error(err)
					return
				}
				s[0] = byte(g + i)
				if i%2 == 0 {
					if err := m.Unregister(b); err != nil {
						t.Error(err)
						return
					}
				}
				if _, _, err := m.Alloc(64, 64); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
