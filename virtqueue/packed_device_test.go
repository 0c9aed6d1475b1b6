package virtqueue

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"unsafe"
)

// packedDevice plays the device side of a packed ring by hand, through the
// memory HeapDMA resolves. It follows the spec (§2.8) rather than the
// driver's code: its own positions and wrap counters, chains walked by the
// NEXT flag, used descriptors written id and flags last. It trusts the
// driver (the driver is under test) but fails the test on anything
// malformed.
type packedDevice struct {
	t    testing.TB // test to fail on malformed driver output
	mem  *HeapDMA   // resolves physical addresses
	size int        // ring slots
	ring []byte     // descriptor ring
	drv  []byte     // driver event suppression area
	dev  []byte     // device event suppression area

	availPos  int            // next slot to take a chain from
	availWrap bool           // wrap counter the driver's AVAIL flag must match at availPos
	usedPos   int            // next slot to write a used descriptor at
	usedWrap  bool           // wrap counter of used descriptors written at usedPos
	usedTotal int            // slots the used position moved in all, for event checks
	slots     map[uint16]int // id -> ring slots its chain took, for completion
}

func newPackedDevice(t testing.TB, mem *HeapDMA, q *Packed) *packedDevice {
	t.Helper()
	n := q.Size()
	ringBytes, drvBytes, devBytes := PackedSizes(n)
	r, d, v := q.Addresses()
	dev := &packedDevice{t: t, mem: mem, size: n, availWrap: true, usedWrap: true, slots: map[uint16]int{}}
	var err error
	if dev.ring, err = mem.Slice(r, ringBytes); err != nil {
		t.Fatal(err)
	}
	if dev.drv, err = mem.Slice(d, drvBytes); err != nil {
		t.Fatal(err)
	}
	if dev.dev, err = mem.Slice(v, devBytes); err != nil {
		t.Fatal(err)
	}
	return dev
}

func newPackedQueue(t testing.TB, o Options) (*Packed, *packedDevice, *HeapDMA) {
	t.Helper()
	mem := &HeapDMA{}
	q, err := NewPacked(mem, o)
	if err != nil {
		t.Fatalf("NewPacked(%+v): %v", o, err)
	}
	return q, newPackedDevice(t, mem, q), mem
}

// word32 is the 32-bit word at off of b, for atomic access.
func word32(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// slotWord loads slot i's id (lo) and flags (hi) atomically (acquire).
func (d *packedDevice) slotWord(i int) (id, flags uint16) {
	v := atomic.LoadUint32(word32(d.ring, i*16+12))
	return uint16(v), uint16(v >> 16)
}

// isAvail reports whether flags make a slot available for wrap counter w.
func isAvail(flags uint16, w bool) bool {
	return (flags&packedAvail != 0) == w && (flags&packedUsed != 0) != w
}

// pending reports whether a chain is available at the device's position.
func (d *packedDevice) pending() bool {
	_, flags := d.slotWord(d.availPos)
	return isAvail(flags, d.availWrap)
}

// next takes the next available chain: its id, buffers and ring slots.
func (d *packedDevice) next() (id uint16, chain []Buffer, slots int, ok bool) {
	if !d.pending() {
		return 0, nil, 0, false
	}
	for {
		if slots >= d.size {
			d.t.Fatalf("device: chain at slot %d longer than the ring", d.availPos)
		}
		w := d.availWrap
		var sid, flags uint16
		if slots == 0 {
			sid, flags = d.slotWord(d.availPos)
		} else {
			b := d.ring[d.availPos*16:]
			sid, flags = binary.LittleEndian.Uint16(b[12:]), binary.LittleEndian.Uint16(b[14:])
			if !isAvail(flags, w) {
				d.t.Fatalf("device: descriptor %d of a chain at slot %d not available (flags %#x, wrap %v)", slots, d.availPos, flags, w)
			}
		}
		b := d.ring[d.availPos*16:]
		addr, length := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint32(b[8:])
		if slots > 0 && sid != id {
			d.t.Fatalf("device: descriptor %d of chain %d carries id %d", slots, id, sid)
		}
		id = sid
		slots++
		d.availPos++
		if d.availPos == d.size {
			d.availPos, d.availWrap = 0, !d.availWrap
		}
		if flags&descFIndirect != 0 {
			if slots != 1 || flags&(descFNext|descFWrite) != 0 || length%16 != 0 || length == 0 {
				d.t.Fatalf("device: bad indirect descriptor flags %#x len %d", flags, length)
			}
			tab, err := d.mem.Slice(addr, int(length))
			if err != nil {
				d.t.Fatalf("device: indirect table: %v", err)
			}
			for i := 0; i < int(length)/16; i++ {
				e := tab[i*16:]
				f := binary.LittleEndian.Uint16(e[14:])
				if f&(descFNext|descFIndirect) != 0 {
					d.t.Fatalf("device: indirect entry %d flags %#x", i, f)
				}
				chain = append(chain, Buffer{Addr: binary.LittleEndian.Uint64(e), Len: binary.LittleEndian.Uint32(e[8:]), Writable: f&descFWrite != 0})
			}
			break
		}
		chain = append(chain, Buffer{Addr: addr, Len: length, Writable: flags&descFWrite != 0})
		if flags&descFNext == 0 {
			break
		}
	}
	d.slots[id] = slots
	return id, chain, slots, true
}

// putUsed writes a used descriptor at slot pos: len, then id and flags
// with one release store.
func (d *packedDevice) putUsed(pos int, id uint16, length uint32, flags uint16) {
	binary.LittleEndian.PutUint32(d.ring[pos*16+8:], length)
	atomic.StoreUint32(word32(d.ring, pos*16+12), uint32(id)|uint32(flags)<<16)
}

// complete returns chain id (taken by next) with length bytes written, at
// the device's used position, which then moves past the chain's slots.
func (d *packedDevice) complete(id uint16, length uint32) {
	slots, ok := d.slots[id]
	if !ok {
		d.t.Fatalf("device: completing id %d it never took", id)
	}
	delete(d.slots, id)
	d.completeAs(id, length, slots)
}

// completeAs writes a used descriptor for id (valid or not) with the WRITE
// flag and moves the used position by slots.
func (d *packedDevice) completeAs(id uint16, length uint32, slots int) {
	d.putUsed(d.usedPos, id, length, usedFlags(d.usedWrap)|descFWrite)
	d.usedPos += slots
	d.usedTotal += slots
	for d.usedPos >= d.size {
		d.usedPos -= d.size
		d.usedWrap = !d.usedWrap
	}
}

// drvEvent returns the driver event suppression area (acquire).
func (d *packedDevice) drvEvent() (offWrap, flags uint16) {
	v := atomic.LoadUint32(word32(d.drv, 0))
	return uint16(v), uint16(v >> 16)
}

// setDevEvent writes the device event suppression area (release).
func (d *packedDevice) setDevEvent(offWrap, flags uint16) {
	atomic.StoreUint32(word32(d.dev, 0), uint32(offWrap)|uint32(flags)<<16)
}

// wantsInterrupt decides, after used descriptors moved the used position
// from oldAbs to nowAbs (usedTotal values: lap*size+slot, the lap even
// while the used wrap counter is 1), whether the driver asked for an
// interrupt (§2.8.10).
func (d *packedDevice) wantsInterrupt(oldAbs, nowAbs int) bool {
	offWrap, flags := d.drvEvent()
	switch flags {
	case eventFlagDisable:
		return false
	case eventFlagDesc:
		// The event slot, on the absolute axis: the lap whose wrap
		// counter matches, at or before the current one.
		lap := nowAbs / d.size
		if (lap%2 == 0) != (offWrap&eventWrapBit != 0) {
			lap--
		}
		ev := lap*d.size + int(offWrap&^eventWrapBit)
		return oldAbs <= ev && ev < nowAbs
	default:
		return true
	}
}

// checkPackedAccounting fails unless the packed queue's invariants hold.
func checkPackedAccounting(t testing.TB, q *Packed) {
	t.Helper()
	if err := q.Verify(); err != nil {
		t.Fatal(err)
	}
}
