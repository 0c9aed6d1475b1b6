package devmodel

import (
	"encoding/binary"
	"fmt"
)

// Split virtqueue layout and flags (virtio 1.2 §2.7.5-§2.7.8).
const (
	descSize          = 16   // bytes per descriptor: addr u64, len u32, flags u16, next u16
	descFNext         = 1    // VIRTQ_DESC_F_NEXT
	descFWrite        = 2    // VIRTQ_DESC_F_WRITE
	descFIndirect     = 4    // VIRTQ_DESC_F_INDIRECT
	availFNoInterrupt = 1    // VIRTQ_AVAIL_F_NO_INTERRUPT
	usedFNoNotify     = 1    // VIRTQ_USED_F_NO_NOTIFY
	ringIdxOff        = 2    // offset of idx in the avail and used rings
	ringEntriesOff    = 4    // offset of ring[] in the avail and used rings
	usedElemSize      = 8    // id u32, len u32
	maxIndirect       = 4096 // entries in one indirect table; more is treated as a bad table
	legacyAlign       = 4096 // legacy used ring alignment (virtio 1.2 §2.7.2)
)

// chain is one descriptor chain popped from the avail ring, resolved to host
// memory. It is reused from pop to pop to keep the hot path allocation-free.
type chain struct {
	head     uint16   // the id to return in the used ring
	readable [][]byte // device-readable buffers, in order
	writable [][]byte // device-writable buffers, in order
	readLen  uint64   // total bytes readable
	writeLen uint64   // total bytes writable
	bufs     []Buffer // every buffer as the driver described it, in order (Queue.Pop returns it)
	slots    int      // ring slots the chain took (packed; split: descriptors in the ring)
}

// reset empties c for the next pop, keeping its slices' capacity.
func (c *chain) reset(head uint16) {
	c.head = head
	c.readable = c.readable[:0]
	c.writable = c.writable[:0]
	c.readLen, c.writeLen = 0, 0
	c.bufs = c.bufs[:0]
	c.slots = 0
}

// gather copies the readable bytes of c into dst[:0] and returns it.
func (c *chain) gather(dst []byte) []byte {
	dst = dst[:0]
	for _, b := range c.readable {
		dst = append(dst, b...)
	}
	return dst
}

// vq is the device side of one virtqueue, whatever its format: ring
// (split, virtio 1.2 §2.7) or packedRing (§2.8). The network device code
// calls only these, so it runs unchanged over either. Only the device
// goroutine (or a transport method holding Net.mu) touches a vq.
type vq interface {
	// pop takes the next available chain; ok=false when there is none. An
	// error is a driver violation; the chain is consumed regardless.
	pop() (c *chain, ok bool, err error)
	// rewind gives the last k popped chains back, as QEMU's
	// virtqueue_unpop does (a receive buffer too small, a peer busy).
	rewind(k int)
	// putUsed writes a used element for the chain popped as head, with
	// the id and length the device claims (a hostile device lies in
	// them); the driver sees it at the next publish.
	putUsed(head uint16, id, length uint32)
	// publish makes the used elements written so far visible (release).
	publish()
	// skew moves the used index (split) or used position (packed) k
	// further than the elements written: a hostile device's lie.
	skew(k uint16)
	// needInterrupt decides, after a publish, whether the driver wants an
	// interrupt.
	needInterrupt() bool
	// setNotify enables or suppresses driver notifications; callers look
	// at the queue once more after enabling.
	setNotify(enable bool)
	// pending reports whether a chain is available that the device has
	// not taken.
	pending() bool
	// availMark is a value that changes when the driver makes more
	// chains available, whatever the device popped or gave back.
	availMark() uint64
	// setFeatures applies the negotiated ring features.
	setFeatures(eventIdx, indirect bool)
	// slots is the queue size the driver set up.
	slots() int
}

var (
	_ vq = (*ring)(nil)
	_ vq = (*packedRing)(nil)
)

// ring is the device side of one split virtqueue. Only the device goroutine
// (or a transport method holding Net.mu) touches it.
type ring struct {
	index     int    // the queue index, for error messages
	mem       Memory // driver memory
	size      uint16 // number of descriptors (a power of two)
	sizeInt   int    // size as an int, for slot arithmetic
	descTab   []byte // the descriptor table, 16*size bytes
	avail     []byte // the avail ring including used_event
	used      []byte // the used ring including avail_event
	eventIdx  bool   // VIRTIO_F_EVENT_IDX negotiated
	indirect  bool   // VIRTIO_F_INDIRECT_DESC negotiated
	lastAvail uint16 // next avail index the device will consume
	usedIdx   uint16 // the device's shadow of used.idx, ahead of it until publish
	// signalled is used.idx when the driver was last considered for an
	// interrupt, valid once signalledSet (QEMU's signalled_used).
	signalled    uint16
	signalledSet bool
	c            chain // the chain pop returns, reused
}

// newRing maps a queue the driver set up. It checks the layout rules of
// virtio 1.2 §2.7 (and §2.7.2 for legacy) and what the model needs for
// atomic access.
func newRing(index int, mem Memory, size int, desc, avail, used uint64, legacy bool) (*ring, error) {
	bad := func(format string, a ...any) error {
		return &DriverError{Queue: index, Head: -1, Err: ErrQueueLayout, What: fmt.Sprintf(format, a...)}
	}
	if size <= 0 || size > 32768 || size&(size-1) != 0 {
		return nil, bad("size %d not a power of two up to 32768", size)
	}
	availLen := ringEntriesOff + 2*size + 2
	usedLen := ringEntriesOff + usedElemSize*size + 2
	if legacy {
		if desc%legacyAlign != 0 {
			return nil, bad("legacy descriptor table at %#x not 4096-aligned", desc)
		}
		if want := desc + uint64(descSize*size); avail != want {
			return nil, bad("legacy avail ring at %#x, want %#x", avail, want)
		}
		want := (avail + uint64(availLen) + legacyAlign - 1) &^ (legacyAlign - 1)
		if used != want {
			return nil, bad("legacy used ring at %#x, want %#x", used, want)
		}
	}
	if desc%16 != 0 || avail%2 != 0 || used%4 != 0 {
		return nil, bad("misaligned rings desc %#x avail %#x used %#x", desc, avail, used)
	}
	if avail%4 != 0 {
		return nil, bad("avail ring at %#x: the model needs it 4-byte aligned for atomic access", avail)
	}
	r := &ring{index: index, mem: mem, size: uint16(size), sizeInt: size}
	var err error
	if r.descTab, err = mem.Slice(desc, descSize*size); err != nil {
		return nil, bad("descriptor table: %v", err)
	}
	if r.avail, err = mem.Slice(avail, availLen); err != nil {
		return nil, bad("avail ring: %v", err)
	}
	if r.used, err = mem.Slice(used, usedLen); err != nil {
		return nil, bad("used ring: %v", err)
	}
	if !aligned4(r.avail) || !aligned4(r.used) {
		return nil, bad("rings not 4-byte aligned in host memory")
	}
	return r, nil
}

// errorf builds a DriverError for this queue.
func (r *ring) errorf(head int, err error, format string, a ...any) error {
	return &DriverError{Queue: r.index, Head: head, Err: err, What: fmt.Sprintf(format, a...)}
}

// availIdx is the driver's avail.idx (acquire).
func (r *ring) availIdx() uint16 { return load16(r.avail, ringIdxOff) }

// pending reports whether the driver made chains available that the device
// has not consumed.
func (r *ring) pending() bool { return r.availIdx() != r.lastAvail }

// pop takes the next available chain. ok is false when there is none. An
// error is a driver violation; the chain is consumed regardless.
func (r *ring) pop() (c *chain, ok bool, err error) {
	idx := r.availIdx()
	if idx == r.lastAvail {
		return nil, false, nil
	}
	if n := idx - r.lastAvail; int(n) > r.sizeInt {
		return nil, false, r.errorf(-1, ErrAvailIdx, "avail.idx %d, device at %d, size %d", idx, r.lastAvail, r.size)
	}
	slot := int(r.lastAvail) & (r.sizeInt - 1)
	var head uint16
	if r.sizeInt == 1 {
		// ring[0] shares its word with used_event, which the driver
		// stores atomically at any time: read it atomically too.
		head = load16(r.avail, ringEntriesOff)
	} else {
		// A plain load, ordered by the acquire of avail.idx: the word
		// also holds the next entry, which the driver may be writing.
		head = binary.LittleEndian.Uint16(r.avail[ringEntriesOff+2*slot:])
	}
	r.lastAvail++
	if int(head) >= r.sizeInt {
		return nil, false, r.errorf(int(head), ErrHeadRange, "head %d, size %d", head, r.size)
	}
	c = &r.c
	c.reset(head)
	if err := r.walk(c, r.descTab, r.sizeInt, int(head), false); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// rewind gives the last k popped chains back to the avail ring, as QEMU's
// virtqueue_unpop does when a receive buffer is too small.
func (r *ring) rewind(k int) { r.lastAvail -= uint16(k) }

// availMark is avail.idx: it moves only when the driver adds chains.
func (r *ring) availMark() uint64 { return uint64(r.availIdx()) }

// setFeatures applies EVENT_IDX and INDIRECT_DESC.
func (r *ring) setFeatures(eventIdx, indirect bool) { r.eventIdx, r.indirect = eventIdx, indirect }

// slots is the queue size.
func (r *ring) slots() int { return r.sizeInt }

// skew moves the device's used.idx k past the elements written.
func (r *ring) skew(k uint16) { r.usedIdx += k }

// walk follows a chain through table (the descriptor table or an indirect
// table of n entries) from descriptor i, appending its buffers to c.
func (r *ring) walk(c *chain, table []byte, n int, i int, inIndirect bool) error {
	head := int(c.head)
	for count := 0; ; count++ {
		if count >= n {
			return r.errorf(head, ErrLoop, "more than %d descriptors", n)
		}
		d := table[descSize*i:]
		addr := binary.LittleEndian.Uint64(d)
		length := binary.LittleEndian.Uint32(d[8:])
		flags := binary.LittleEndian.Uint16(d[12:])
		next := binary.LittleEndian.Uint16(d[14:])
		if !inIndirect {
			c.slots++
		}
		if flags&descFIndirect != 0 {
			switch {
			case !r.indirect:
				return r.errorf(head, ErrIndirectFeature, "descriptor %d", i)
			case inIndirect:
				return r.errorf(head, ErrIndirectNested, "descriptor %d", i)
			case flags&descFNext != 0:
				return r.errorf(head, ErrIndirectNext, "descriptor %d", i)
			case length == 0 || length%descSize != 0 || length/descSize > maxIndirect:
				return r.errorf(head, ErrIndirectSize, "length %d", length)
			case len(c.readable)+len(c.writable) != 0:
				// QEMU accepts only a chain that is nothing but the indirect
				// descriptor: mixing is not allowed by §2.7.5.3.1 either.
				return r.errorf(head, ErrIndirectNested, "indirect descriptor after direct ones")
			}
			tab, err := r.mem.Slice(addr, int(length))
			if err != nil {
				return r.errorf(head, ErrBadAddress, "indirect table %#x+%d: %v", addr, length, err)
			}
			return r.walk(c, tab, int(length/descSize), 0, true)
		}
		if length == 0 {
			return r.errorf(head, ErrZeroLength, "descriptor %d", i)
		}
		b, err := r.mem.Slice(addr, int(length))
		if err != nil {
			return r.errorf(head, ErrBadAddress, "descriptor %d at %#x+%d: %v", i, addr, length, err)
		}
		if flags&descFWrite != 0 {
			c.writable = append(c.writable, b)
			c.writeLen += uint64(length)
		} else {
			if len(c.writable) != 0 {
				return r.errorf(head, ErrOrder, "descriptor %d", i)
			}
			c.readable = append(c.readable, b)
			c.readLen += uint64(length)
		}
		c.bufs = append(c.bufs, Buffer{Addr: addr, Len: length, Writable: flags&descFWrite != 0, Bytes: b})
		if c.readLen+c.writeLen > 1<<32-1 {
			return r.errorf(head, ErrChainTooLong, "")
		}
		if flags&descFNext == 0 {
			return nil
		}
		if int(next) >= n {
			return r.errorf(head, ErrNextRange, "next %d, table of %d", next, n)
		}
		i = int(next)
	}
}

// putUsed writes a used element; the driver sees it at the next publish.
// In a split ring the element's place does not depend on the chain, so
// head is not needed.
func (r *ring) putUsed(_ uint16, id, length uint32) {
	slot := int(r.usedIdx) & (r.sizeInt - 1)
	e := r.used[ringEntriesOff+usedElemSize*slot:]
	binary.LittleEndian.PutUint32(e, id)
	binary.LittleEndian.PutUint32(e[4:], length)
	r.usedIdx++
}

// publish makes the used elements written so far visible (release).
func (r *ring) publish() { store16(r.used, ringIdxOff, r.usedIdx) }

// needInterrupt decides, after a publish, whether the driver wants an
// interrupt (virtio 1.2 §2.7.10): with EVENT_IDX, when used.idx passed
// used_event since the last decision; otherwise unless NO_INTERRUPT is set.
func (r *ring) needInterrupt() bool {
	old, now := r.signalled, r.usedIdx
	valid := r.signalledSet
	r.signalled, r.signalledSet = now, true
	if !r.eventIdx {
		flags := load16(r.avail, 0)
		return flags&availFNoInterrupt == 0 && (!valid || old != now)
	}
	if valid && old == now {
		return false
	}
	event := load16(r.avail, ringEntriesOff+2*r.sizeInt)
	// vring_need_event: the driver asked to hear about index event+1, and
	// it lies in (old, now].
	return !valid || now-event-1 < now-old
}

// setNotify enables or suppresses driver notifications (virtio 1.2 §2.7.10):
// the NO_NOTIFY flag, or with EVENT_IDX avail_event set to the avail.idx the
// device has seen, so that the driver notifies once it goes past it (not
// lastAvail: a device waiting for more receive buffers has given chains
// back and lastAvail may lag behind what the driver published). Callers
// look at the ring once more after enabling.
func (r *ring) setNotify(enable bool) {
	if r.eventIdx {
		if enable {
			store16(r.used, ringEntriesOff+usedElemSize*r.sizeInt, r.availIdx())
		}
		return
	}
	var f uint16
	if !enable {
		f = usedFNoNotify
	}
	store16(r.used, 0, f)
}
