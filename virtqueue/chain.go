package virtqueue

import (
	"fmt"
	"math"
)

// checkChain validates a chain the caller built, the same way for every
// ring format, and returns its writable byte count saturated at 2^32-1
// (what a used length is checked against).
func checkChain(bufs []Buffer, size int) (writable uint32, err error) {
	n := len(bufs)
	if n == 0 {
		return 0, ErrNoBuffers
	}
	if n > size {
		return 0, fmt.Errorf("virtqueue: chain of %d buffers in a queue of %d: %w", n, size, ErrChainTooLong)
	}
	var w uint64
	for i := range bufs {
		b := &bufs[i]
		if b.Len == 0 {
			return 0, fmt.Errorf("virtqueue: buffer %d of %d: %w", i, n, ErrZeroLength)
		}
		if b.Writable {
			w += uint64(b.Len)
		} else if w != 0 {
			return 0, fmt.Errorf("virtqueue: buffer %d of %d: %w", i, n, ErrBufferOrder)
		}
	}
	return uint32(min(w, math.MaxUint32)), nil
}
