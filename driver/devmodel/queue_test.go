package devmodel

import (
	"errors"
	"testing"

	"github.com/govirtio/govirtio/virtqueue"
)

// The device side refuses rings it cannot map or cannot access atomically,
// as a driver error naming the layout (what virtqueue's DeviceView used to
// check for its own tests).
func TestNewQueueRefusesRingsItCannotMap(t *testing.T) {
	mem := &virtqueue.HeapDMA{}
	_, phys, err := mem.Alloc(1<<16, 4096)
	if err != nil {
		t.Fatal(err)
	}
	desc, avail, used := phys, phys+8192, phys+16384
	tests := []struct {
		name string
		new  func() (*Queue, error)
		ok   bool
	}{
		{"split rings as laid out", func() (*Queue, error) { return NewSplitQueue(mem, 8, desc, avail, used) }, true},
		{"split size 1", func() (*Queue, error) { return NewSplitQueue(mem, 1, desc, avail, used) }, true},
		{"split size not a power of two", func() (*Queue, error) { return NewSplitQueue(mem, 6, desc, avail, used) }, false},
		{"split size too large", func() (*Queue, error) { return NewSplitQueue(mem, 65536, desc, avail, used) }, false},
		{"avail ring not 4-byte aligned", func() (*Queue, error) { return NewSplitQueue(mem, 8, desc, avail+2, used) }, false},
		{"used ring misaligned", func() (*Queue, error) { return NewSplitQueue(mem, 8, desc, avail, used+2) }, false},
		{"used ring outside driver memory", func() (*Queue, error) { return NewSplitQueue(mem, 8, desc, avail, phys+1<<16-8) }, false},
		{"packed ring as laid out", func() (*Queue, error) { return NewPackedQueue(mem, 8, desc, avail, used) }, true},
		{"packed device area misaligned", func() (*Queue, error) { return NewPackedQueue(mem, 8, desc, avail, used+2) }, false},
		{"packed ring outside driver memory", func() (*Queue, error) { return NewPackedQueue(mem, 8, phys+1<<16-64, avail, used) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.new()
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrQueueLayout) {
				t.Fatalf("error %v is not ErrQueueLayout", err)
			}
			if err == nil && q.Size() == 0 {
				t.Fatal("size 0")
			}
		})
	}
}
