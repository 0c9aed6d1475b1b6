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

// Verify checks the invariants of a packed queue's shadow state and
// returns the first one broken (a testing aid, like Split.Verify):
//
//   - every id is in exactly one place: the free-id list or in flight;
//   - free slots plus the slots of the chains in flight are all of them;
//   - the slots the device may still return (published or not) never
//     exceed the slots taken by chains in flight, and they are exactly
//     the slots from the used position to the avail position.
func (q *Packed) Verify() error {
	free := make([]bool, q.size)
	id := q.freeID
	for i := range q.numFreeIDs {
		if free[id] {
			return fmt.Errorf("virtqueue: free-id list: id %d seen twice (step %d of %d)", id, i, q.numFreeIDs)
		}
		if q.chainDescs[id] != 0 {
			return fmt.Errorf("virtqueue: id %d both free and in flight", id)
		}
		free[id] = true
		id = q.nextID[id]
	}
	chains, slots := 0, 0
	for i, n := range q.chainDescs {
		if n != 0 {
			chains++
			slots += int(n)
		} else if !free[i] {
			return fmt.Errorf("virtqueue: id %d neither free nor in flight (leaked)", i)
		}
	}
	if chains != q.inFlight {
		return fmt.Errorf("virtqueue: %d ids in flight, InFlight says %d", chains, q.inFlight)
	}
	if q.numFree+slots != q.size {
		return fmt.Errorf("virtqueue: %d free slots + %d in flight != size %d", q.numFree, slots, q.size)
	}
	if q.detached {
		return nil // the device was reset: positions wait for Reset
	}
	if q.outstanding+q.added > slots {
		return fmt.Errorf("virtqueue: %d slots outstanding and %d added, only %d in flight", q.outstanding, q.added, slots)
	}
	if int(q.availPos) >= q.size || int(q.usedPos) >= q.size {
		return fmt.Errorf("virtqueue: positions avail %d used %d outside a ring of %d", q.availPos, q.usedPos, q.size)
	}
	if (int(q.usedPos)+q.outstanding+q.added)%q.size != int(q.availPos) {
		return fmt.Errorf("virtqueue: used position %d + %d outstanding + %d added is not the avail position %d", q.usedPos, q.outstanding, q.added, q.availPos)
	}
	if crosses := int(q.usedPos)+q.outstanding+q.added >= q.size; crosses == (q.usedWrap == q.availWrap) {
		return fmt.Errorf("virtqueue: wrap counters used %v avail %v for positions %d and %d", q.usedWrap, q.availWrap, q.usedPos, q.availPos)
	}
	return nil
}
