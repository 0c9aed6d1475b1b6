package virtionet

import (
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
)

// TestRxPagesArePageAligned checks the fact zero-copy RX rests on: a
// 4096-byte gVisor chunk is a 4096-byte Go heap object, which the Go
// allocator places on a 4096-byte boundary, so one chunk is one physical
// page on bare metal. If an allocator change broke this, RX would still be
// correct (a buffer is posted only up to the page boundary) but each page
// would hold less.
func TestRxPagesArePageAligned(t *testing.T) {
	var views []*buffer.View
	defer func() {
		for _, v := range views {
			v.Release()
		}
	}()
	for i := 0; i < 256; i++ {
		v := buffer.NewView(pageSize)
		views = append(views, v)
		if got := pageRemain(chunkBytes(v)); got != pageSize || v.Capacity() != pageSize {
			t.Fatalf("chunk %d: capacity %d, %d bytes to the page boundary; want a whole page", i, v.Capacity(), got)
		}
	}
}
