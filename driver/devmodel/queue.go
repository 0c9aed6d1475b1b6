package devmodel

// Queue is the device side of one virtqueue, split or packed, for a test
// that plays the device by hand: package virtqueue's own tests and the
// unit and fuzz tests of driver/virtionet. It is the ring code a Net runs
// (ring.go, packed.go), so the driver side is checked by one device side
// everywhere, written from the specification and not from package
// virtqueue. It validates chains as a Net does (a violation is a
// *DriverError, the chain consumed) and lets the test write whatever used
// entries it likes, honest or hostile. Like the rest of the model, it
// belongs to one goroutine.
type Queue struct {
	q vq // the ring
}

// Buffer is one buffer of a chain the device took: the descriptor as the
// driver wrote it and the driver memory it names.
type Buffer struct {
	Addr     uint64 // physical address
	Len      uint32 // length in bytes
	Writable bool   // VIRTQ_DESC_F_WRITE: the device writes it
	Bytes    []byte // the Len bytes at Addr, resolved through Memory
}

// Chain is a descriptor chain the device took from the ring.
type Chain struct {
	// Head is the id to return in the used ring (split: the head
	// descriptor's index; packed: the buffer id).
	Head uint16
	// Buffers are the chain's buffers in order, indirect tables followed.
	// The slice is reused by the next Pop.
	Buffers []Buffer
	// Slots is how many ring slots the chain took (an indirect chain
	// takes one).
	Slots int
	// Readable and Writable are the bytes the device reads and writes,
	// in order, and ReadLen and WriteLen their totals.
	Readable, Writable [][]byte
	ReadLen, WriteLen  uint64
}

// NewSplitQueue maps a split queue of size entries whose descriptor
// table, avail ring and used ring the driver placed at desc, avail and
// used (modern layout rules: any addresses with the alignments of virtio
// 1.2 §2.7; the model needs the rings 4-byte aligned).
func NewSplitQueue(mem Memory, size int, desc, avail, used uint64) (*Queue, error) {
	r, err := newRing(0, mem, size, desc, avail, used, false)
	if err != nil {
		return nil, err
	}
	return &Queue{q: r}, nil
}

// NewPackedQueue maps a packed queue of size slots whose descriptor ring
// and driver and device event suppression areas are at ring, driver and
// device.
func NewPackedQueue(mem Memory, size int, ring, driver, device uint64) (*Queue, error) {
	r, err := newPackedRing(0, mem, size, ring, driver, device)
	if err != nil {
		return nil, err
	}
	return &Queue{q: r}, nil
}

// SetFeatures applies the negotiated EVENT_IDX and INDIRECT_DESC (both
// off until called: an indirect descriptor is then a violation).
func (q *Queue) SetFeatures(eventIdx, indirect bool) { q.q.setFeatures(eventIdx, indirect) }

// Size is the queue size.
func (q *Queue) Size() int { return q.q.slots() }

// Pending reports whether the driver made a chain available that the
// device has not taken.
func (q *Queue) Pending() bool { return q.q.pending() }

// Pop takes the next available chain. ok is false when there is none; an
// error is a driver violation (a *DriverError), the chain consumed. The
// Chain's slices are valid until the next Pop.
func (q *Queue) Pop() (c Chain, ok bool, err error) {
	ic, ok, err := q.q.pop()
	if !ok || err != nil {
		return Chain{}, ok, err
	}
	return Chain{
		Head: ic.head, Buffers: ic.bufs, Slots: ic.slots,
		Readable: ic.readable, Writable: ic.writable, ReadLen: ic.readLen, WriteLen: ic.writeLen,
	}, true, nil
}

// Rewind gives the last k chains taken back to the ring.
func (q *Queue) Rewind(k int) { q.q.rewind(k) }

// Use writes the used entry of the chain taken as head, claiming id and
// length (honest: id == head and length at most its writable bytes). The
// driver sees it at the next Publish.
func (q *Queue) Use(head uint16, id, length uint32) { q.q.putUsed(head, id, length) }

// UseAs writes a used entry claiming id and length whatever the device
// took, and moves the used position by slots (packed; a split ring's
// entries take one position each, so slots is ignored there): a hostile
// device's lie, as Skew is. A chain the device took as id is no longer
// held.
func (q *Queue) UseAs(id, length uint32, slots int) {
	switch r := q.q.(type) {
	case *packedRing:
		if id <= 0xffff {
			r.release(uint16(id))
		}
		r.writeUsed(id, length, uint64(slots))
	default:
		// Not a chain the split ring tracks: its used slot does not depend
		// on the chain.
		r.putUsed(0, id, length)
	}
}

// Publish makes the used entries written since the last Publish visible
// to the driver at once (release).
func (q *Queue) Publish() { q.q.publish() }

// Skew moves the used index (split) or used position (packed) k further
// than the entries written: a hostile device's lie. Publish shows it.
func (q *Queue) Skew(k uint16) { q.q.skew(k) }

// NeedInterrupt decides, after a Publish, whether the driver asked for an
// interrupt (virtio 1.2 §2.7.10, §2.8.10) for what was published since
// the last decision.
func (q *Queue) NeedInterrupt() bool { return q.q.needInterrupt() }

// SetNotify enables or suppresses driver notifications; after enabling,
// look at the ring once more (Pending) before sleeping.
func (q *Queue) SetNotify(enable bool) { q.q.setNotify(enable) }
