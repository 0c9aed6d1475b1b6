package virtqueue

import (
	"encoding/binary"
	"fmt"
)

// Split is the driver side of a split virtqueue (virtio 1.2 §2.7).
//
// Device-visible memory (descriptor table, rings, indirect tables) is only
// ever written by Split and read back only where the device owns the data
// (used ring, avail_event, used.flags): chain links, lengths and the free
// list live in shadow state in Go memory, so a device that scribbles over
// the descriptor table cannot corrupt the driver.
//
// A Split is not safe for concurrent use (see Queue).
type Split struct {
	size int    // number of descriptors, a power of two
	mask uint16 // size-1: free-running 16-bit indices mod size
	opts Options

	desc  []byte // descriptor table, written by the driver only
	avail []byte // avail ring, written by the driver only
	used  []byte // used ring, written by the device only

	descPhys, availPhys, usedPhys uint64 // for Addresses

	indirect     []byte // indirect table pool: table i belongs to head i; nil without Indirect
	indirectPhys uint64 // physical address of indirect[0]
	indirectMax  int    // entries per indirect table

	availHdr   ringWord // avail.flags (lo) and avail.idx (hi): driver-written
	usedHdr    ringWord // used.flags (lo) and used.idx (hi): device-written
	usedEvent  half     // used_event in the avail ring: driver-written
	availEvent half     // avail_event in the used ring: device-written

	// Shadow state, in Go memory only.
	next       []uint16 // next[i]: following descriptor in i's chain, or in the free list
	chainDescs []uint16 // for a head in flight, ring descriptors its chain uses (>= 1); 0 otherwise
	chainTail  []uint16 // for a head in flight, its chain's last descriptor
	writable   []uint32 // for a head in flight, writable bytes posted, saturated at 2^32-1
	freeHead   uint16   // first free descriptor, meaningful when numFree > 0
	numFree    int      // free descriptors
	inFlight   int      // chains added and not yet returned

	availIdx   uint16 // next avail.idx: entries added, published or not
	kickedIdx  uint16 // avail.idx as last published by Kick
	availFlags uint16 // avail.flags as last written
	lastUsed   uint16 // used.idx value up to which entries were consumed
	usedSeen   uint16 // used.idx as last read from the device
	noIntr     bool   // interrupts disabled by DisableInterrupts
	detachPos  int    // where DetachUnused resumes its scan
	fence      func() // the DMA memory's Fence, or nil (see Fencer)

	stats Stats // counters, see Stats
}

// NewSplit allocates a split queue's memory from mem and returns the queue,
// empty, with interrupts enabled. Give Addresses to Transport.SetupQueue.
func NewSplit(mem DMA, o Options) (*Split, error) {
	n := o.Size
	if n < 1 || n > MaxSize || n&(n-1) != 0 {
		return nil, fmt.Errorf("virtqueue: size %d is not a power of two in 1..%d", n, MaxSize)
	}
	if mem == nil {
		return nil, fmt.Errorf("virtqueue: no DMA memory")
	}
	l := layoutFor(n)
	q := &Split{
		size:       n,
		mask:       uint16(n - 1),
		opts:       o,
		next:       make([]uint16, n),
		chainDescs: make([]uint16, n),
		chainTail:  make([]uint16, n),
		writable:   make([]uint32, n),
		numFree:    n,
		fence:      fenceOf(mem),
	}
	if o.Legacy {
		buf, phys, err := mem.Alloc(l.legacyBytes, legacyAlign)
		if err != nil {
			return nil, fmt.Errorf("virtqueue: allocating legacy ring of size %d (%d bytes): %w", n, l.legacyBytes, err)
		}
		if len(buf) < l.legacyBytes || phys%legacyAlign != 0 {
			return nil, fmt.Errorf("virtqueue: DMA.Alloc returned %d bytes at %#x, want %d at 4096 alignment", len(buf), phys, l.legacyBytes)
		}
		q.desc = buf[:l.descBytes:l.descBytes]
		q.avail = buf[l.legacyAvailOff : l.legacyAvailOff+l.availBytes : l.legacyAvailOff+l.availBytes]
		q.used = buf[l.legacyUsedOff : l.legacyUsedOff+l.usedBytes : l.legacyUsedOff+l.usedBytes]
		q.descPhys = phys
		q.availPhys = phys + uint64(l.legacyAvailOff)
		q.usedPhys = phys + uint64(l.legacyUsedOff)
	} else {
		// Modern layout (§2.7, alignment table): desc 16, avail 2, used 4.
		// Avail gets 4 for its 32-bit atomic words.
		var err error
		if q.desc, q.descPhys, err = alloc(mem, "descriptor table", l.descBytes, 16); err != nil {
			return nil, err
		}
		if q.avail, q.availPhys, err = alloc(mem, "avail ring", l.availBytes, 4); err != nil {
			return nil, err
		}
		if q.used, q.usedPhys, err = alloc(mem, "used ring", l.usedBytes, 4); err != nil {
			return nil, err
		}
	}
	if o.Indirect && n > 1 {
		q.indirectMax = o.IndirectMax
		if q.indirectMax == 0 {
			q.indirectMax = DefaultIndirectMax(n)
		}
		if q.indirectMax < 0 || q.indirectMax > n {
			return nil, fmt.Errorf("virtqueue: indirect table length %d not in 1..%d", q.indirectMax, n)
		}
		if q.indirectMax > 1 {
			var err error
			if q.indirect, q.indirectPhys, err = alloc(mem, "indirect tables", n*q.indirectMax*descSize, 16); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if q.availHdr, err = wordAt(q.avail, 0); err != nil {
		return nil, err
	}
	if q.usedHdr, err = wordAt(q.used, 0); err != nil {
		return nil, err
	}
	if q.usedEvent, err = halfAt(q.avail, l.usedEventOff); err != nil {
		return nil, err
	}
	if q.availEvent, err = halfAt(q.used, l.availEventOff); err != nil {
		return nil, err
	}
	q.initFreeList()
	return q, nil
}

// alloc is mem.Alloc with the result checked: a DMA implementation that
// returns less memory or a misaligned address would make the device and
// the driver disagree on the layout.
func alloc(mem DMA, what string, size, align int) ([]byte, uint64, error) {
	buf, phys, err := mem.Alloc(size, align)
	if err != nil {
		return nil, 0, fmt.Errorf("virtqueue: allocating %s (%d bytes): %w", what, size, err)
	}
	if len(buf) < size || phys%uint64(align) != 0 {
		return nil, 0, fmt.Errorf("virtqueue: DMA.Alloc for %s returned %d bytes at %#x, want %d at alignment %d", what, len(buf), phys, size, align)
	}
	return buf[:size:size], phys, nil
}

func (q *Split) initFreeList() {
	for i := range q.next {
		q.next[i] = uint16(i + 1) // the last link wraps to 0; never followed, numFree guards it
	}
	q.freeHead = 0
	q.numFree = q.size
}

// Size is the number of descriptors.
func (q *Split) Size() int { return q.size }

// Addresses returns the physical addresses of the descriptor table, the
// avail ring and the used ring, for Transport.SetupQueue.
func (q *Split) Addresses() (desc, avail, used uint64) {
	return q.descPhys, q.availPhys, q.usedPhys
}

// Free is the number of free descriptors.
func (q *Split) Free() int { return q.numFree }

// InFlight is the number of chains added and not yet returned by Pop or
// DetachUnused.
func (q *Split) InFlight() int { return q.inFlight }

// Stats returns a copy of the counters.
func (q *Split) Stats() Stats { return q.stats }

// Add puts one chain in the descriptor table and the avail ring; the device
// sees it after the next Kick. It returns the head id that Pop reports on
// completion: the caller keeps its per-chain state in a slice of Size()
// entries indexed by it.
//
// With Indirect, a chain of 2..IndirectMax buffers takes one ring
// descriptor and goes through the head's indirect table; otherwise it takes
// one descriptor per buffer. When they are not free Add returns ErrFull
// (backpressure, nothing posted). Add does not allocate.
func (q *Split) Add(bufs []Buffer) (head uint16, err error) {
	writable, err := checkChain(bufs, q.size)
	if err != nil {
		return 0, err
	}
	n := len(bufs)
	indirect := q.indirect != nil && n > 1 && n <= q.indirectMax
	need := n
	if indirect {
		need = 1
	}
	// A valid device cannot complete a chain before Kick publishes it, so
	// the second test only fails with a device that guessed heads: the
	// avail ring must still not be overrun before the next Kick.
	if need > q.numFree || int(q.availIdx-q.kickedIdx) >= q.size {
		q.stats.Full++
		return 0, ErrFull
	}

	head = q.freeHead
	tail := head
	if indirect {
		// The head's own table: the head is free, so is its table.
		off := int(head) * q.indirectMax * descSize
		table := q.indirect[off : off+n*descSize]
		for i := range bufs {
			flags, nxt := bufFlags(&bufs[i]), uint16(0)
			if i < n-1 {
				flags |= descFNext
				nxt = uint16(i + 1)
			}
			putDesc(table, i, bufs[i].Addr, bufs[i].Len, flags, nxt)
		}
		putDesc(q.desc, int(head), q.indirectPhys+uint64(off), uint32(n*descSize), descFIndirect, 0)
		q.freeHead = q.next[head]
		q.stats.AddedIndirect++
	} else {
		// The chain takes the first n entries of the free list, whose
		// shadow links then are the chain's links.
		id := head
		for i := range bufs {
			nxt := q.next[id]
			flags, link := bufFlags(&bufs[i]), uint16(0)
			if i < n-1 {
				flags |= descFNext
				link = nxt
			}
			putDesc(q.desc, int(id), bufs[i].Addr, bufs[i].Len, flags, link)
			tail = id
			id = nxt
		}
		q.freeHead = id
	}
	q.numFree -= need
	q.chainDescs[head] = uint16(need) // need <= 32768 fits
	q.chainTail[head] = tail
	q.writable[head] = writable
	q.inFlight++

	// The ring entry is a plain store: the device reads it only after the
	// release store of avail.idx in Kick. With size 1 the entry shares its
	// 32-bit word with used_event, which the device reads atomically at any
	// time: the entry then goes through that word atomically too.
	if q.size == 1 {
		q.usedEvent.w.store(head, q.usedEvent.load())
	} else {
		binary.LittleEndian.PutUint16(q.avail[4+2*int(q.availIdx&q.mask):], head)
	}
	q.availIdx++
	q.stats.Added++
	return head, nil
}

func bufFlags(b *Buffer) uint16 {
	if b.Writable {
		return descFWrite
	}
	return 0
}

// putDesc writes descriptor i of table. Plain stores: the device reads
// descriptors only after the avail.idx release store that publishes them.
func putDesc(table []byte, i int, addr uint64, length uint32, flags, next uint16) {
	d := table[i*descSize : i*descSize+descSize]
	binary.LittleEndian.PutUint64(d[0:8], addr)
	binary.LittleEndian.PutUint32(d[8:12], length)
	binary.LittleEndian.PutUint16(d[12:14], flags)
	binary.LittleEndian.PutUint16(d[14:16], next)
}

// Kick publishes everything added since the last Kick and reports whether
// the device must be notified (Transport.Notify).
func (q *Split) Kick() (notify bool) {
	old, new := q.kickedIdx, q.availIdx
	if old == new {
		return false // nothing new: a notification would tell the device nothing
	}
	// Release: the descriptors and ring entries written by Add become
	// visible to the device no later than the new index (§2.7.13.3).
	q.availHdr.store(q.availFlags, new)
	q.kickedIdx = new
	q.stats.Kicks++
	// The store above is sequentially consistent, hence also the full
	// barrier required between publishing avail.idx and reading the
	// device's suppression state (§2.7.13.4): the loads below cannot be
	// satisfied before it, so a device that re-enabled notifications
	// after missing our index is seen.
	if q.fence != nil {
		q.fence()
	}
	if q.opts.EventIdx {
		notify = needEvent(q.availEvent.load(), new, old)
	} else {
		flags, _ := q.usedHdr.load()
		notify = flags&usedFNoNotify == 0
	}
	if notify {
		q.stats.Notifies++
	} else {
		q.stats.Suppressed++
	}
	return notify
}

// Pop takes the next used element. ok=false when there is none. A device
// violation is returned as a *DeviceError and counted; the entry is
// consumed either way, so a drain loop always makes progress:
//   - ErrBadLength (len > writable bytes posted): head is valid and its
//     descriptors are freed; the caller recycles its buffers and drops the
//     data (written is 0).
//   - ErrBadID, ErrNotInFlight: nothing was freed and head means nothing.
//   - ErrBadUsedIdx: used.idx jumped by more than Size; the entries in
//     between are skipped and head means nothing.
func (q *Split) Pop() (head uint16, written uint32, ok bool, err error) {
	if q.lastUsed == q.usedSeen {
		// Acquire: the used elements up to used.idx are read after it.
		_, q.usedSeen = q.usedHdr.load()
		if q.lastUsed == q.usedSeen {
			return 0, 0, false, nil
		}
		if pending := q.usedSeen - q.lastUsed; int(pending) > q.size {
			// Impossible for a valid device: at most size chains are
			// in flight. Going backwards shows up here too.
			pos := q.lastUsed
			q.lastUsed = q.usedSeen
			q.stats.BadUsedIdx++
			q.rearmUsedEvent()
			return 0, 0, true, &DeviceError{Err: ErrBadUsedIdx, Pos: pos, UsedIdx: q.usedSeen}
		}
	}
	pos := q.lastUsed
	off := 4 + usedElemSize*int(pos&q.mask)
	id, length := load32(q.used, off), load32(q.used, off+4)
	q.lastUsed++
	q.rearmUsedEvent()

	if id >= uint32(q.size) {
		q.stats.BadID++
		return 0, 0, true, &DeviceError{Err: ErrBadID, Pos: pos, ID: id, Len: length}
	}
	head = uint16(id)
	if q.chainDescs[head] == 0 {
		q.stats.NotInFlight++
		return 0, 0, true, &DeviceError{Err: ErrNotInFlight, Pos: pos, ID: id, Len: length}
	}
	posted := q.writable[head]
	q.release(head)
	if length > posted {
		q.stats.BadLength++
		return head, 0, true, &DeviceError{Err: ErrBadLength, Pos: pos, ID: id, Len: length, Posted: posted}
	}
	q.stats.Popped++
	return head, length, true, nil
}

// rearmUsedEvent keeps used_event at the next entry while interrupts are
// enabled with EVENT_IDX, so that the device interrupts for the next
// completion and not for the ones already consumed. The store is
// sequentially consistent: the next Pop's load of used.idx is ordered
// after it, so an entry the device added before seeing the new used_event
// (and therefore without interrupting) is still found by that load.
func (q *Split) rearmUsedEvent() {
	if q.opts.EventIdx && !q.noIntr {
		q.usedEvent.store(q.lastUsed)
	}
}

// release returns head's chain to the free list.
func (q *Split) release(head uint16) {
	q.next[q.chainTail[head]] = q.freeHead
	q.freeHead = head
	q.numFree += int(q.chainDescs[head])
	q.chainDescs[head] = 0
	q.writable[head] = 0
	q.inFlight--
}

// DisableInterrupts asks the device not to interrupt for used entries, for
// a NAPI-style drain. It is a hint: a device may still interrupt.
func (q *Split) DisableInterrupts() {
	if q.noIntr {
		return
	}
	q.noIntr = true
	if q.opts.EventIdx {
		// §2.7.7.2: with EVENT_IDX avail.flags stays 0; park used_event
		// half the index space away, so that no batch the device can
		// complete (at most Size <= 32768 entries) crosses it.
		q.usedEvent.store(q.lastUsed + 0x8000)
		return
	}
	q.availFlags = availFNoInterrupt
	// Only flags change; idx is rewritten with the published value, not
	// with entries added since the last Kick.
	q.availHdr.store(q.availFlags, q.kickedIdx)
}

// EnableInterrupts re-arms interrupts (used_event or avail.flags) and
// returns true if used entries arrived that Pop has not taken, in which
// case the caller drains again (and calls DisableInterrupts first if it
// wants the drain uninterrupted). This closes the race of an entry added
// between the last empty Pop and the re-arming, which would otherwise wait
// for an interrupt that never comes.
func (q *Split) EnableInterrupts() (pending bool) {
	q.noIntr = false
	if q.opts.EventIdx {
		q.usedEvent.store(q.lastUsed)
	} else {
		q.availFlags = 0
		q.availHdr.store(q.availFlags, q.kickedIdx)
	}
	// The store above is sequentially consistent, so this load cannot be
	// satisfied before the device can see the re-arming: either the device
	// sees it and interrupts, or we see its entry here. usedSeen is left
	// alone: Pop validates how far used.idx moved when it loads it.
	if q.fence != nil {
		q.fence()
	}
	_, idx := q.usedHdr.load()
	return idx != q.lastUsed
}

// DetachUnused takes back one chain still in flight, for use once the
// device has been reset (it no longer reads or writes the queue): the
// caller frees the buffers of the returned head. ok=false when no chain is
// left in flight.
func (q *Split) DetachUnused() (head uint16, ok bool) {
	for range q.size {
		i := q.detachPos
		q.detachPos = (q.detachPos + 1) & int(q.mask)
		if q.chainDescs[i] != 0 {
			q.release(uint16(i))
			q.stats.Detached++
			return uint16(i), true
		}
	}
	return 0, false
}

// Reset returns the queue to its state after NewSplit (zeroed rings,
// indices at 0, every descriptor free) so that it can be set up again after
// a device reset. Chains still in flight must be taken back with
// DetachUnused first.
func (q *Split) Reset() error {
	if q.inFlight != 0 {
		return fmt.Errorf("virtqueue: reset with %d chains in flight; detach them first", q.inFlight)
	}
	clear(q.desc)
	clear(q.avail)
	clear(q.used)
	clear(q.indirect)
	q.initFreeList()
	q.availIdx, q.kickedIdx, q.availFlags = 0, 0, 0
	q.lastUsed, q.usedSeen = 0, 0
	q.noIntr = false
	q.detachPos = 0
	return nil
}
