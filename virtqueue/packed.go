package virtqueue

import (
	"encoding/binary"
	"fmt"
)

// Packed is the driver side of a packed virtqueue (virtio 1.2 §2.8).
//
// One descriptor ring is written by both sides: the driver makes chains
// available in ring order, the device overwrites slots with used
// descriptors in the order it completes chains. A slot's AVAIL and USED
// flags, compared with a wrap counter that flips at each lap, tell whose
// turn it is. Ids (what Add returns and Pop reports) are buffer ids, not
// ring positions: they come from a free-id list, and the per-chain state
// (ring slots taken, writable bytes posted) is kept by id in Go memory, so
// the device writing anything into the ring cannot corrupt the driver.
//
// A Packed is not safe for concurrent use (see Queue).
type Packed struct {
	size int     // number of ring slots and of buffer ids, 1..MaxPackedSize
	opts Options // as given to NewPacked

	ring     []byte   // descriptor ring: written by the driver (available) and the device (used)
	drvEvent ringWord // driver event suppression area: off_wrap (lo), flags (hi); driver-written
	devEvent ringWord // device event suppression area: off_wrap (lo), flags (hi); device-written

	ringPhys, drvPhys, devPhys uint64 // for Addresses

	indirect     []byte // indirect table pool: table i belongs to id i; nil without Indirect
	indirectPhys uint64 // physical address of indirect[0]
	indirectMax  int    // entries per indirect table

	// Shadow state, in Go memory only, indexed by buffer id.
	nextID     []uint16 // free-id list links
	chainDescs []uint16 // for an id in flight, ring slots its chain takes (>= 1); 0 otherwise
	writable   []uint32 // for an id in flight, writable bytes posted, saturated at 2^32-1
	addedAt    []uint64 // for an id in flight, kicks at the time of Add: equal to kicks until published
	kicks      uint64   // Kick calls that published something
	freeID     uint16   // first free id, meaningful when numFreeIDs > 0
	numFreeIDs int      // free ids
	numFree    int      // ring slots not taken by a chain in flight
	inFlight   int      // chains added and not yet returned

	availPos  uint16 // slot the next Add writes
	availWrap bool   // avail wrap counter at availPos (starts true, §2.8.1)
	added     int    // slots written by Add since the last Kick
	// The head of the first chain added since the last Kick is made
	// available by Kick, all at once with what follows it: until then the
	// device stops at it (§2.8.21.1).
	pendPos  uint16 // its slot
	pendWord uint32 // its id (lo) and flags (hi), as Kick stores them
	pending  bool   // a head waits for Kick

	usedPos     uint16 // slot where the next used descriptor is expected
	usedWrap    bool   // used wrap counter at usedPos (starts true)
	outstanding int    // published slots from usedPos on that the device may still return

	drvFlags uint16 // driver event flags as last written
	noIntr   bool   // interrupts disabled by DisableInterrupts
	detachID int    // where DetachUnused resumes its scan
	detached bool   // DetachUnused ran: positions mean nothing until Reset
	fence    func() // the DMA memory's Fence, or nil (see Fencer)

	stats Stats // counters, see Stats
}

var _ Queue = (*Packed)(nil)

// NewPacked allocates a packed queue's memory from mem and returns the
// queue, empty, with interrupts enabled. o.Legacy is refused: packed rings
// exist only on modern (VERSION_1) devices. Give Addresses to
// Transport.SetupQueue.
func NewPacked(mem DMA, o Options) (*Packed, error) {
	n := o.Size
	if n < 1 || n > MaxPackedSize {
		return nil, fmt.Errorf("virtqueue: packed size %d not in 1..%d", n, MaxPackedSize)
	}
	if o.Legacy {
		return nil, fmt.Errorf("virtqueue: packed rings need a modern device, not a legacy layout")
	}
	if mem == nil {
		return nil, fmt.Errorf("virtqueue: no DMA memory")
	}
	q := &Packed{
		size:       n,
		opts:       o,
		nextID:     make([]uint16, n),
		chainDescs: make([]uint16, n),
		writable:   make([]uint32, n),
		addedAt:    make([]uint64, n),
		fence:      fenceOf(mem),
	}
	// §2.8.10.1 alignment: ring 16, event areas 4.
	var err error
	ringBytes, drvBytes, devBytes := PackedSizes(n)
	if q.ring, q.ringPhys, err = alloc(mem, "descriptor ring", ringBytes, 16); err != nil {
		return nil, err
	}
	drv, drvPhys, err := alloc(mem, "driver event area", drvBytes, 4)
	if err != nil {
		return nil, err
	}
	dev, devPhys, err := alloc(mem, "device event area", devBytes, 4)
	if err != nil {
		return nil, err
	}
	q.drvPhys, q.devPhys = drvPhys, devPhys
	if q.drvEvent, err = wordAt(drv, 0); err != nil {
		return nil, err
	}
	if q.devEvent, err = wordAt(dev, 0); err != nil {
		return nil, err
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
			if q.indirect, q.indirectPhys, err = alloc(mem, "indirect tables", n*q.indirectMax*descSize, 16); err != nil {
				return nil, err
			}
		}
	}
	q.init()
	return q, nil
}

// init sets the shadow state and the driver event area to those of an
// empty queue with interrupts enabled.
func (q *Packed) init() {
	for i := range q.nextID {
		q.nextID[i] = uint16(i + 1) // the last link is never followed: numFreeIDs guards it
	}
	q.freeID, q.numFreeIDs, q.numFree, q.inFlight = 0, q.size, q.size, 0
	q.availPos, q.availWrap, q.added, q.pending = 0, true, 0, false
	q.usedPos, q.usedWrap, q.outstanding = 0, true, 0
	q.noIntr = false
	q.detachID, q.detached = 0, false
	q.armInterrupts()
}

// Size is the number of ring slots and of buffer ids.
func (q *Packed) Size() int { return q.size }

// Addresses returns the physical addresses of the descriptor ring and of
// the driver and device event suppression areas, for
// Transport.SetupQueue (queue_desc, queue_driver, queue_device).
func (q *Packed) Addresses() (desc, driver, device uint64) {
	return q.ringPhys, q.drvPhys, q.devPhys
}

// Free is the number of ring slots not taken by chains in flight.
func (q *Packed) Free() int { return q.numFree }

// InFlight is the number of chains added and not yet returned.
func (q *Packed) InFlight() int { return q.inFlight }

// Stats returns a copy of the counters.
func (q *Packed) Stats() Stats { return q.stats }

// Add writes one chain into the ring at the driver's position and returns
// its buffer id, which Pop reports on completion. The device sees it after
// the next Kick. With Indirect, a chain of 2..IndirectMax buffers takes
// one slot and goes through the id's indirect table. ErrFull is
// backpressure (nothing written). Add does not allocate.
func (q *Packed) Add(bufs []Buffer) (id uint16, err error) {
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
	if need > q.numFree || q.numFreeIDs == 0 {
		q.stats.Full++
		return 0, ErrFull
	}
	id = q.freeID
	q.freeID = q.nextID[id]
	q.numFreeIDs--

	headPos, headWrap := q.availPos, q.availWrap
	var headFlags uint16
	if indirect {
		off := int(id) * q.indirectMax * descSize
		table := q.indirect[off : off+n*descSize]
		for i := range bufs {
			// In a table NEXT is not used: its length says how many
			// entries there are (§2.8.14), and ids are ignored.
			putPacked(table, i, bufs[i].Addr, bufs[i].Len, 0, bufFlags(&bufs[i]))
		}
		q.putSlotBody(headPos, q.indirectPhys+uint64(off), uint32(n*descSize))
		headFlags = descFIndirect | availFlags(headWrap)
		q.advanceAvail()
		q.stats.AddedIndirect++
	} else {
		for i := range bufs {
			flags := bufFlags(&bufs[i]) | availFlags(q.availWrap)
			if i < n-1 {
				flags |= descFNext
			}
			// The id goes in every descriptor of the chain: virtio 1.2
			// reads it from the last one (§2.8.6), QEMU 7.2 from the head.
			if i == 0 {
				q.putSlotBody(q.availPos, bufs[i].Addr, bufs[i].Len)
				headFlags = flags
			} else {
				// Plain stores: the device reads non-head descriptors
				// only after acquiring the head's flags.
				putPacked(q.ring, int(q.availPos), bufs[i].Addr, bufs[i].Len, id, flags)
			}
			q.advanceAvail()
		}
	}
	word := uint32(id) | uint32(headFlags)<<16
	if !q.pending {
		q.pending, q.pendPos, q.pendWord = true, headPos, word
	} else {
		// The first pending head still hides this chain from the device,
		// which takes chains in ring order and reads this slot only after
		// acquiring that head's flags: a plain store is ordered by Kick's
		// release store.
		binary.LittleEndian.PutUint16(q.ring[int(headPos)*descSize+packedIDOff:], id)
		binary.LittleEndian.PutUint16(q.ring[int(headPos)*descSize+packedIDOff+2:], headFlags)
	}
	q.added += need
	q.numFree -= need
	q.chainDescs[id] = uint16(need) // need <= 32768 fits
	q.writable[id] = writable
	q.addedAt[id] = q.kicks
	q.inFlight++
	q.stats.Added++
	return id, nil
}

// advanceAvail moves the driver's position one slot, flipping the avail
// wrap counter at the end of the ring.
func (q *Packed) advanceAvail() {
	q.availPos++
	if int(q.availPos) == q.size {
		q.availPos = 0
		q.availWrap = !q.availWrap
	}
}

// putSlotBody writes addr and len of ring slot i (plain stores, published
// by the release store of the slot's id/flags word).
func (q *Packed) putSlotBody(i uint16, addr uint64, length uint32) {
	d := q.ring[int(i)*descSize : int(i)*descSize+descSize]
	binary.LittleEndian.PutUint64(d[0:8], addr)
	binary.LittleEndian.PutUint32(d[packedLenOff:packedLenOff+4], length)
}

// storeSlotWord publishes slot i's id and flags with one atomic (release)
// store: addr and len written before it are visible to a device that
// sees the flags.
func (q *Packed) storeSlotWord(i uint16, word uint32) {
	storeLE32(q.ring, int(i)*descSize+packedIDOff, word)
}

// loadSlotWord reads slot i's id and flags with one atomic (acquire) load.
func (q *Packed) loadSlotWord(i uint16) (id, flags uint16) {
	v := load32(q.ring, int(i)*descSize+packedIDOff)
	return uint16(v), uint16(v >> 16)
}

// putPacked writes descriptor i of table with plain stores.
func putPacked(table []byte, i int, addr uint64, length uint32, id, flags uint16) {
	d := table[i*descSize : i*descSize+descSize]
	binary.LittleEndian.PutUint64(d[0:8], addr)
	binary.LittleEndian.PutUint32(d[8:12], length)
	binary.LittleEndian.PutUint16(d[12:14], id)
	binary.LittleEndian.PutUint16(d[14:16], flags)
}

// Kick makes everything added since the last Kick available, by storing
// the first pending head's flags last (§2.8.21.1), and reports whether the
// device asked to be notified (§2.8.10, §2.8.21.3).
func (q *Packed) Kick() (notify bool) {
	if q.added == 0 {
		return false // nothing new: a notification would tell the device nothing
	}
	// Release: every descriptor Add wrote, including the heads stored
	// already, is visible no later than this head, which the device
	// reaches first.
	q.storeSlotWord(q.pendPos, q.pendWord)
	q.pending = false
	q.kicks++
	added := q.added
	q.outstanding += added
	q.added = 0
	q.stats.Kicks++
	// The store above is sequentially consistent, hence also the full
	// barrier between making descriptors available and reading the
	// device's event suppression (§2.8.21.3.1).
	if q.fence != nil {
		q.fence()
	}
	offWrap, flags := q.devEvent.load()
	switch {
	case flags == eventFlagDisable:
		notify = false
	case flags == eventFlagDesc && q.opts.EventIdx:
		notify = q.crossed(offWrap, added)
	default:
		// ENABLE, or a value the device may not use (DESC without
		// EVENT_IDX, the reserved 3): notifying is always safe.
		notify = true
	}
	if notify {
		q.stats.Notifies++
	} else {
		q.stats.Suppressed++
	}
	return notify
}

// crossed reports whether the last added slots, which end at availPos,
// include the one the device named in off_wrap. Positions are taken on one
// axis where the current lap starts at 0 and the previous lap is negative
// (modulo 2^16, as needEvent wants): an event whose wrap counter differs
// from the avail wrap counter lies in the previous lap.
func (q *Packed) crossed(offWrap uint16, added int) bool {
	event := offWrap &^ eventWrapBit
	if (offWrap&eventWrapBit != 0) != q.availWrap {
		event -= uint16(q.size)
	}
	new := q.availPos
	return needEvent(event, new, new-uint16(added))
}

// Pop takes the next used descriptor; ok=false when there is none. A
// device violation is returned as a *DeviceError and counted; the
// descriptor is consumed either way, so a drain loop always ends:
//   - ErrBadLength: written (len, with VIRTQ_DESC_F_WRITE) exceeds the
//     chain's writable bytes. The id is valid and its chain freed; the
//     caller recycles its buffers and drops the data (written is 0).
//   - ErrBadID (id >= Size), ErrNotInFlight (id not in flight, or added
//     and not yet published by Kick), ErrBadWrap
//     (flags that are neither the driver's nor a used descriptor of this
//     lap): nothing was freed, the id means nothing, and the device's
//     position is taken to be one slot further.
func (q *Packed) Pop() (id uint16, written uint32, ok bool, err error) {
	if q.outstanding == 0 {
		// The device holds nothing: whatever the slot at usedPos
		// holds, it is not a used descriptor of ours.
		return 0, 0, false, nil
	}
	pos := q.usedPos
	rawID, flags := q.loadSlotWord(pos) // acquire: len is read after it
	state := flags & (packedAvail | packedUsed)
	switch state {
	case availFlags(q.usedWrap):
		return 0, 0, false, nil // still available: not used yet
	case usedFlags(q.usedWrap):
	default:
		q.advanceUsed(1)
		q.stats.BadWrap++
		return 0, 0, true, &DeviceError{Err: ErrBadWrap, Pos: pos, ID: uint32(rawID), Flags: flags}
	}
	length := load32(q.ring, int(pos)*descSize+packedLenOff)
	if int(rawID) >= q.size {
		q.advanceUsed(1)
		q.stats.BadID++
		return 0, 0, true, &DeviceError{Err: ErrBadID, Pos: pos, ID: uint32(rawID), Len: length}
	}
	id = rawID
	n := int(q.chainDescs[id])
	if n == 0 || q.addedAt[id] == q.kicks {
		// Never posted, already returned, or added but not yet made
		// available by Kick: not a chain the device holds. (Freeing an
		// unpublished chain would let Kick hand the device buffers the
		// caller already took back.)
		q.advanceUsed(1)
		q.stats.NotInFlight++
		return 0, 0, true, &DeviceError{Err: ErrNotInFlight, Pos: pos, ID: uint32(rawID), Len: length}
	}
	// The device's next used descriptor follows the slots of this chain
	// (§2.8.21.2): ids, not positions, say which chain that was.
	q.advanceUsed(n)
	posted := q.writable[id]
	q.release(id)
	// len is taken whether or not the device set VIRTQ_DESC_F_WRITE in
	// the used descriptor: virtio 1.2 §2.8.4 calls it reserved without
	// it, but QEMU (7.2 and later) never sets WRITE in used descriptors
	// and Linux reads len regardless. It is checked against the chain's
	// writable bytes either way.
	if length > posted {
		q.stats.BadLength++
		return id, 0, true, &DeviceError{Err: ErrBadLength, Pos: pos, ID: uint32(id), Len: length, Posted: posted}
	}
	q.stats.Popped++
	return id, length, true, nil
}

// advanceUsed moves the expected used position k slots on, never past
// what was published (a device that returned a chain at a position it
// could not be at, or garbage, must not make the driver read slots it
// never handed over), and re-arms the interrupt at the new position.
func (q *Packed) advanceUsed(k int) {
	k = min(k, q.outstanding)
	q.outstanding -= k
	p := int(q.usedPos) + k
	if p >= q.size {
		p -= q.size
		q.usedWrap = !q.usedWrap
	}
	q.usedPos = uint16(p)
	if q.opts.EventIdx && !q.noIntr {
		q.armInterrupts()
	}
}

// release returns id and its ring slots to the free lists.
func (q *Packed) release(id uint16) {
	q.numFree += int(q.chainDescs[id])
	q.chainDescs[id] = 0
	q.writable[id] = 0
	q.nextID[id] = q.freeID
	q.freeID = id
	q.numFreeIDs++
	q.inFlight--
}

// armInterrupts writes the driver event suppression area for interrupts
// on: with EVENT_IDX, at the used descriptor expected next (off_wrap =
// usedPos with the used wrap counter); otherwise at every used descriptor.
// The store is sequentially consistent: a following check of the ring
// cannot be satisfied before the device can see it.
func (q *Packed) armInterrupts() {
	if q.opts.EventIdx {
		off := q.usedPos
		if q.usedWrap {
			off |= eventWrapBit
		}
		q.drvFlags = eventFlagDesc
		q.drvEvent.store(off, q.drvFlags)
		return
	}
	q.drvFlags = eventFlagEnable
	q.drvEvent.store(0, q.drvFlags)
}

// DisableInterrupts asks the device not to interrupt for used descriptors
// (RING_EVENT_FLAGS_DISABLE), for a NAPI-style drain. It is a hint.
func (q *Packed) DisableInterrupts() {
	if q.noIntr {
		return
	}
	q.noIntr = true
	q.drvFlags = eventFlagDisable
	off, _ := q.drvEvent.load()
	q.drvEvent.store(off, q.drvFlags)
}

// EnableInterrupts re-arms interrupts and returns true if a used
// descriptor (or anything Pop would report) is already waiting, in which
// case the caller drains again: that closes the race of a descriptor used
// between the last empty Pop and the re-arming.
func (q *Packed) EnableInterrupts() (pending bool) {
	q.noIntr = false
	q.armInterrupts()
	if q.outstanding == 0 {
		return false
	}
	if q.fence != nil {
		q.fence()
	}
	_, flags := q.loadSlotWord(q.usedPos)
	return flags&(packedAvail|packedUsed) != availFlags(q.usedWrap)
}

// DetachUnused takes back one chain still in flight, once the device has
// been reset; the caller frees the buffers of the returned id. ok=false
// when none is left.
func (q *Packed) DetachUnused() (id uint16, ok bool) {
	for range q.size {
		i := q.detachID
		q.detachID++
		if q.detachID == q.size {
			q.detachID = 0
		}
		if q.chainDescs[i] != 0 {
			q.release(uint16(i))
			q.detached = true
			q.stats.Detached++
			return uint16(i), true
		}
	}
	return 0, false
}

// Reset returns the queue to its state after NewPacked (zeroed ring,
// wrap counters at 1, every id and slot free) so that it can be set up
// again after a device reset. Chains in flight must be detached first.
func (q *Packed) Reset() error {
	if q.inFlight != 0 {
		return fmt.Errorf("virtqueue: reset with %d chains in flight; detach them first", q.inFlight)
	}
	clear(q.ring)
	clear(q.indirect)
	q.devEvent.store(0, 0)
	q.init()
	return nil
}
