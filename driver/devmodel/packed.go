package devmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Packed virtqueue layout and flags (virtio 1.2 §2.8).
const (
	pkFlagAvail     = 1 << 7  // VIRTQ_DESC_F_AVAIL
	pkFlagUsed      = 1 << 15 // VIRTQ_DESC_F_USED
	pkWordOff       = 12      // id u16 and flags u16 share the aligned word at offset 12
	pkEventSize     = 4       // struct pvirtq_event_suppress: off_wrap u16, flags u16
	pkEventEnable   = 0       // RING_EVENT_FLAGS_ENABLE
	pkEventDisable  = 1       // RING_EVENT_FLAGS_DISABLE
	pkEventDesc     = 2       // RING_EVENT_FLAGS_DESC
	pkEventWrap     = 1 << 15 // off_wrap: wrap counter bit
	pkMaxChainSlots = 32768   // no chain is longer than the largest ring
)

// Packed-ring driver violations, on top of the split ones that apply
// (zero length, order, indirect rules, addresses).
var (
	ErrIDInUse    = errors.New("buffer id made available again while the device holds it")
	ErrIDMismatch = errors.New("descriptors of one chain carry different buffer ids")
	ErrChainFlags = errors.New("descriptor of a chain not marked available for the ring's wrap counter")
)

// heldChain is what the device keeps of a chain it took, until it writes
// the chain's used descriptor.
type heldChain struct {
	slots uint16 // ring slots the chain took: the used position moves by this
}

// pendingUsed is a used descriptor written by putUsed and made visible by
// publish.
type pendingUsed struct {
	pos  int    // ring slot
	word uint32 // id (lo) and flags (hi)
}

// packedRing is the device side of one packed virtqueue. Positions are
// kept as absolute slot counts since the queue was set up (never reset
// while it lives): slot = abs % size, and the wrap counter is 1 on even
// laps (abs/size even), 0 on odd ones (§2.8.1). That makes the event
// suppression arithmetic plain integer comparisons.
type packedRing struct {
	index    int    // the queue index, for error messages
	mem      Memory // driver memory
	size     int    // ring slots
	ring     []byte // the descriptor ring, 16*size bytes
	drv      []byte // driver event suppression area (driver-written)
	dev      []byte // device event suppression area (device-written)
	eventIdx bool   // VIRTIO_F_EVENT_IDX negotiated
	indirect bool   // VIRTIO_F_INDIRECT_DESC negotiated

	availAbs uint64 // next slot the device takes a chain from
	usedAbs  uint64 // next slot the device writes a used descriptor at
	seenAbs  uint64 // slots up to here were seen available (availMark)

	held    map[uint16]heldChain // chains taken and not yet used, by id
	popped  []uint16             // ids in the order taken, for rewind; reused
	pend    []pendingUsed        // used descriptors written since the last publish; reused
	pendPos int                  // the first pending one's slot, written last

	// signalled is usedAbs when the driver was last considered for an
	// interrupt, valid once signalledSet (QEMU's signalled_used).
	signalled    uint64
	signalledSet bool
	c            chain // the chain pop returns, reused
}

// newPackedRing maps a packed queue the driver set up: desc is the
// descriptor ring (16-aligned), drv and dev the event suppression areas
// (4-aligned), as virtio 1.2 §2.8.10.1 and §4.1.4.3 lay them out.
func newPackedRing(index int, mem Memory, size int, desc, drv, dev uint64) (*packedRing, error) {
	bad := func(format string, a ...any) error {
		return &DriverError{Queue: index, Head: -1, Err: ErrQueueLayout, What: fmt.Sprintf(format, a...)}
	}
	if size <= 0 || size > 32768 {
		return nil, bad("packed size %d not in 1..32768", size)
	}
	if desc%16 != 0 || drv%4 != 0 || dev%4 != 0 {
		return nil, bad("misaligned packed ring %#x, driver area %#x, device area %#x", desc, drv, dev)
	}
	r := &packedRing{index: index, mem: mem, size: size, held: map[uint16]heldChain{}}
	var err error
	if r.ring, err = mem.Slice(desc, descSize*size); err != nil {
		return nil, bad("descriptor ring: %v", err)
	}
	if r.drv, err = mem.Slice(drv, pkEventSize); err != nil {
		return nil, bad("driver event area: %v", err)
	}
	if r.dev, err = mem.Slice(dev, pkEventSize); err != nil {
		return nil, bad("device event area: %v", err)
	}
	if !aligned4(r.ring) || !aligned4(r.drv) || !aligned4(r.dev) {
		return nil, bad("areas not 4-byte aligned in host memory")
	}
	return r, nil
}

func (r *packedRing) errorf(head int, err error, format string, a ...any) error {
	return &DriverError{Queue: r.index, Head: head, Err: err, What: fmt.Sprintf(format, a...)}
}

// slot and wrap turn an absolute position into a ring slot and the wrap
// counter of that lap.
func (r *packedRing) slot(abs uint64) int   { return int(abs % uint64(r.size)) }
func (r *packedRing) wrap(abs uint64) bool  { return (abs/uint64(r.size))%2 == 0 }
func (r *packedRing) slots() int            { return r.size }
func (r *packedRing) setFeatures(e, i bool) { r.eventIdx, r.indirect = e, i }

// word loads slot i's id and flags with one atomic load (acquire).
func (r *packedRing) word(i int) (id, flags uint16) {
	v := load32(r.ring, i*descSize+pkWordOff)
	return uint16(v), uint16(v >> 16)
}

// availableAt reports whether the driver made the slot at abs available:
// AVAIL equal to that lap's wrap counter and USED its inverse.
func (r *packedRing) availableAt(abs uint64) bool {
	_, flags := r.word(r.slot(abs))
	return r.isAvail(flags, r.wrap(abs))
}

func (r *packedRing) isAvail(flags uint16, w bool) bool {
	return (flags&pkFlagAvail != 0) == w && (flags&pkFlagUsed != 0) != w
}

func (r *packedRing) pending() bool { return r.availableAt(r.availAbs) }

// availMark is how far, from the device's position, the driver has made
// slots available (scanning descriptor flags, which the driver sets on
// every descriptor of a chain): it grows only when the driver adds.
func (r *packedRing) availMark() uint64 {
	r.seenAbs = max(r.seenAbs, r.availAbs)
	for r.seenAbs-r.availAbs < uint64(r.size) && r.availableAt(r.seenAbs) {
		r.seenAbs++
	}
	return r.seenAbs
}

// pop takes the chain at the device's position (§2.8.6, §2.8.7): the head
// is read through its id/flags word (acquire), the rest with plain loads.
func (r *packedRing) pop() (*chain, bool, error) {
	if !r.pending() {
		return nil, false, nil
	}
	c := &r.c
	start := r.availAbs
	headID, _ := r.word(r.slot(start))
	c.reset(headID)
	id := headID
	n := 0
	for {
		if n >= r.size || n >= pkMaxChainSlots {
			return nil, false, r.errorf(int(headID), ErrLoop, "chain longer than the ring of %d", r.size)
		}
		abs := start + uint64(n)
		d := r.ring[descSize*r.slot(abs):]
		addr := binary.LittleEndian.Uint64(d)
		length := binary.LittleEndian.Uint32(d[8:])
		did := binary.LittleEndian.Uint16(d[12:])
		flags := binary.LittleEndian.Uint16(d[14:])
		if n > 0 {
			if !r.isAvail(flags, r.wrap(abs)) {
				return nil, false, r.errorf(int(headID), ErrChainFlags, "descriptor %d at slot %d flags %#x", n, r.slot(abs), flags)
			}
			if did != headID {
				return nil, false, r.errorf(int(headID), ErrIDMismatch, "descriptor %d has id %d", n, did)
			}
		}
		id = did // virtio 1.2 §2.8.6: the id is that of the last descriptor
		n++
		if flags&descFIndirect != 0 {
			switch {
			case !r.indirect:
				return nil, false, r.errorf(int(id), ErrIndirectFeature, "slot %d", r.slot(abs))
			case flags&descFNext != 0 || n > 1:
				return nil, false, r.errorf(int(id), ErrIndirectNext, "indirect descriptor in a chain")
			case length == 0 || length%descSize != 0 || length/descSize > maxIndirect:
				return nil, false, r.errorf(int(id), ErrIndirectSize, "length %d", length)
			}
			tab, err := r.mem.Slice(addr, int(length))
			if err != nil {
				return nil, false, r.errorf(int(id), ErrBadAddress, "indirect table %#x+%d: %v", addr, length, err)
			}
			// §2.8.14: the table's length says how many entries there
			// are; NEXT is not followed inside it.
			for i := 0; i < int(length)/descSize; i++ {
				e := tab[descSize*i:]
				ef := binary.LittleEndian.Uint16(e[14:])
				if ef&descFIndirect != 0 {
					return nil, false, r.errorf(int(id), ErrIndirectNested, "entry %d", i)
				}
				if err := r.addBuffer(c, int(id), binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint32(e[8:]), ef); err != nil {
					return nil, false, err
				}
			}
			break
		}
		if err := r.addBuffer(c, int(id), addr, length, flags); err != nil {
			return nil, false, err
		}
		if flags&descFNext == 0 {
			break
		}
	}
	if _, dup := r.held[id]; dup {
		return nil, false, r.errorf(int(id), ErrIDInUse, "")
	}
	c.head = id
	c.slots = n
	r.held[id] = heldChain{slots: uint16(n)}
	r.popped = append(r.popped, id)
	r.availAbs += uint64(n)
	return c, true, nil
}

// addBuffer resolves one descriptor into c, with the checks QEMU makes.
func (r *packedRing) addBuffer(c *chain, head int, addr uint64, length uint32, flags uint16) error {
	if length == 0 {
		return r.errorf(head, ErrZeroLength, "")
	}
	b, err := r.mem.Slice(addr, int(length))
	if err != nil {
		return r.errorf(head, ErrBadAddress, "%#x+%d: %v", addr, length, err)
	}
	if flags&descFWrite != 0 {
		c.writable = append(c.writable, b)
		c.writeLen += uint64(length)
	} else {
		if len(c.writable) != 0 {
			return r.errorf(head, ErrOrder, "")
		}
		c.readable = append(c.readable, b)
		c.readLen += uint64(length)
	}
	c.bufs = append(c.bufs, Buffer{Addr: addr, Len: length, Writable: flags&descFWrite != 0, Bytes: b})
	if c.readLen+c.writeLen > 1<<32-1 {
		return r.errorf(head, ErrChainTooLong, "")
	}
	return nil
}

// rewind gives the last k chains taken back: the device's position moves
// back over their slots and they are no longer held.
func (r *packedRing) rewind(k int) {
	for ; k > 0 && len(r.popped) > 0; k-- {
		id := r.popped[len(r.popped)-1]
		r.popped = r.popped[:len(r.popped)-1]
		r.availAbs -= uint64(r.held[id].slots)
		delete(r.held, id)
	}
}

// putUsed writes the used descriptor of the chain taken as head, claiming
// id and length, at the device's used position, which then moves past the
// chain's slots (§2.8.7). The first descriptor since the last publish has
// its id and flags written by publish, last, so that the driver sees the
// batch at once; the others are hidden behind it.
func (r *packedRing) putUsed(head uint16, id, length uint32) {
	slots := r.release(head)
	if slots == 0 {
		slots = 1 // not taken (a test playing the device): one slot
	}
	r.writeUsed(id, length, uint64(slots))
}

// release forgets the chain taken as head, if any, and returns the slots
// it took (0 when the device holds no chain by that id).
func (r *packedRing) release(head uint16) uint16 {
	h, ok := r.held[head]
	if !ok {
		return 0
	}
	delete(r.held, head)
	for i, p := range r.popped {
		if p == head {
			r.popped = append(r.popped[:i], r.popped[i+1:]...)
			break
		}
	}
	return h.slots
}

// writeUsed writes a used descriptor claiming id and length at the used
// position, which then moves by slots: putUsed's write, and a hostile
// device's (Queue.UseAs) when slots is not what the chain took.
func (r *packedRing) writeUsed(id, length uint32, slots uint64) {
	pos := r.slot(r.usedAbs)
	var flags uint16
	if r.wrap(r.usedAbs) {
		flags = pkFlagAvail | pkFlagUsed
	}
	// Like QEMU (virtqueue_packed_fill_desc), no WRITE flag: only AVAIL
	// and USED are set in a used descriptor, and len is meaningful
	// anyway. A driver that ignores len without WRITE, as virtio 1.2
	// §2.8.4 allows, receives nothing from QEMU; the model shows it.
	binary.LittleEndian.PutUint32(r.ring[descSize*pos+8:], length)
	w := uint32(uint16(id)) | uint32(flags)<<16
	if len(r.pend) == 0 {
		r.pendPos = pos
	} else {
		store32(r.ring, descSize*pos+pkWordOff, w)
	}
	r.pend = append(r.pend, pendingUsed{pos: pos, word: w})
	r.usedAbs += slots
}

// publish writes the first pending used descriptor's id and flags with
// one release store: the driver then sees every used descriptor written
// since the last publish.
func (r *packedRing) publish() {
	if len(r.pend) == 0 {
		return
	}
	store32(r.ring, descSize*r.pendPos+pkWordOff, r.pend[0].word)
	r.pend = r.pend[:0]
}

// skew moves the used position k slots further than the descriptors
// written, as a hostile device would.
func (r *packedRing) skew(k uint16) { r.usedAbs += uint64(k) }

// needInterrupt decides, after a publish, whether the driver wants an
// interrupt (§2.8.10): never with DISABLE; with DESC (EVENT_IDX), when the
// used position passed the slot off_wrap names since the last decision;
// otherwise when anything was published since then.
func (r *packedRing) needInterrupt() bool {
	old, now := r.signalled, r.usedAbs
	valid := r.signalledSet
	r.signalled, r.signalledSet = now, true
	offWrap, flags := load16(r.drv, 0), load16(r.drv, 2)
	switch {
	case flags == pkEventDisable:
		return false
	case flags == pkEventDesc && r.eventIdx:
		if !valid {
			return true
		}
		// The event slot on the absolute axis: in the current lap if
		// its wrap counter is this lap's, else in the lap before.
		lap := now / uint64(r.size)
		if r.wrap(now) != (offWrap&pkEventWrap != 0) {
			if lap == 0 {
				return false
			}
			lap--
		}
		ev := lap*uint64(r.size) + uint64(offWrap&^pkEventWrap)
		return old <= ev && ev < now
	default:
		return !valid || old != now
	}
}

// setNotify enables or suppresses driver notifications in the device
// event area (§2.8.10). With EVENT_IDX, enabling names the first slot the
// driver has not made available yet (not the device's position: chains
// given back by rewind are available already and must not count).
func (r *packedRing) setNotify(enable bool) {
	if !enable {
		store16(r.dev, 2, pkEventDisable)
		return
	}
	if !r.eventIdx {
		store16(r.dev, 2, pkEventEnable)
		return
	}
	at := r.availMark()
	off := uint16(r.slot(at))
	if r.wrap(at) {
		off |= pkEventWrap
	}
	store16(r.dev, 0, off)
	store16(r.dev, 2, pkEventDesc)
}
