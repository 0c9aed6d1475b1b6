package virtqueue

import "fmt"

// Verify checks the invariants of the queue's shadow state and returns the
// first one broken. They are what makes the queue safe against a hostile
// device, so tests and fuzz targets call it after every step:
//
//   - every descriptor is in exactly one place: the free list or the chain
//     of exactly one head in flight;
//   - the free list holds Free() descriptors and no cycle;
//   - each chain in flight is as long as recorded and ends at its recorded
//     tail;
//   - InFlight() is the number of heads in flight, and the entries added
//     since the last Kick fit in the avail ring.
//
// It walks every descriptor and allocates a bitmap: a debugging and testing
// aid, not for the data path.
func (q *Split) Verify() error {
	owner := make([]int32, q.size) // 0: unseen, -1: free, h+1: chain of head h
	id := q.freeHead
	for i := range q.numFree {
		if owner[id] != 0 {
			return fmt.Errorf("virtqueue: free list: descriptor %d seen twice (step %d of %d)", id, i, q.numFree)
		}
		owner[id] = -1
		id = q.next[id]
	}
	heads := 0
	for h := range q.size {
		n := int(q.chainDescs[h])
		if n == 0 {
			continue
		}
		heads++
		id := uint16(h)
		for i := range n {
			if owner[id] != 0 {
				return fmt.Errorf("virtqueue: chain of head %d: descriptor %d already owned by %d", h, id, owner[id])
			}
			owner[id] = int32(h) + 1
			if i == n-1 && id != q.chainTail[h] {
				return fmt.Errorf("virtqueue: chain of head %d ends at %d, tail recorded %d", h, id, q.chainTail[h])
			}
			id = q.next[id]
		}
	}
	for i, o := range owner {
		if o == 0 {
			return fmt.Errorf("virtqueue: descriptor %d is neither free nor in a chain (leaked)", i)
		}
	}
	if heads != q.inFlight {
		return fmt.Errorf("virtqueue: %d heads in flight, InFlight says %d", heads, q.inFlight)
	}
	if int(q.availIdx-q.kickedIdx) > q.size {
		return fmt.Errorf("virtqueue: %d entries added since the last kick overflow a ring of %d", q.availIdx-q.kickedIdx, q.size)
	}
	return nil
}
