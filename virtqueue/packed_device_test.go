package virtqueue

import (
	"encoding/binary"
	"github.com/govirtio/govirtio/driver/devmodel"
	"sync/atomic"
	"testing"
	"unsafe"
)

// packedDevice plays the device side of a packed ring for this package's
// tests. Chains are taken and used descriptors written by devmodel.Queue:
// the device model's own ring code, written from the specification
// (§2.8) and not from this package. The test device keeps a mirror of the
// positions for the tests that forge descriptors by hand at a slot, and
// adds only what a test observes or forges: the raw ring, both event
// areas, descriptors no honest device writes. It trusts the driver (the
// driver is under test) but fails the test on anything malformed.
type packedDevice struct {
	t    testing.TB      // test to fail on malformed driver output
	mem  *HeapDMA        // resolves physical addresses
	size int             // ring slots
	q    *devmodel.Queue // the device side of the ring
	ring []byte          // descriptor ring, for raw looks and forged descriptors
	drv  []byte          // driver event suppression area
	dev  []byte          // device event suppression area

	availPos  int            // next slot to take a chain from (mirror of the device's)
	availWrap bool           // wrap counter the driver's AVAIL flag must match at availPos
	usedPos   int            // next slot the device writes a used descriptor at (mirror)
	usedWrap  bool           // wrap counter of used descriptors written at usedPos
	usedTotal int            // slots the used position moved in all
	held      map[uint16]int // id -> ring slots its chain took (mirror)
}

func newPackedDevice(t testing.TB, mem *HeapDMA, q *Packed) *packedDevice {
	t.Helper()
	n := q.Size()
	ringBytes, drvBytes, devBytes := PackedSizes(n)
	r, d, v := q.Addresses()
	dev := &packedDevice{t: t, mem: mem, size: n, availWrap: true, usedWrap: true, held: map[uint16]int{}}
	var err error
	if dev.q, err = devmodel.NewPackedQueue(&bufferMemory{mem: mem}, n, r, d, v); err != nil {
		t.Fatal(err)
	}
	dev.q.SetFeatures(q.opts.EventIdx, q.opts.Indirect)
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

// pending reports whether a chain is available at the device's position.
func (d *packedDevice) pending() bool { return d.q.Pending() }

// next takes the next available chain: its id, buffers and ring slots.
func (d *packedDevice) next() (id uint16, chain []Buffer, slots int, ok bool) {
	c, ok, err := d.q.Pop()
	if err != nil {
		d.t.Fatalf("device: %v", err)
	}
	if !ok {
		return 0, nil, 0, false
	}
	for _, b := range c.Buffers {
		chain = append(chain, Buffer{Addr: b.Addr, Len: b.Len, Writable: b.Writable})
	}
	d.held[c.Head] = c.Slots
	d.availPos += c.Slots
	for d.availPos >= d.size {
		d.availPos -= d.size
		d.availWrap = !d.availWrap
	}
	return c.Head, chain, c.Slots, true
}

// putUsed forges a used descriptor at slot pos with any flags: len, then
// id and flags with one release store. The device's position is not moved.
func (d *packedDevice) putUsed(pos int, id uint16, length uint32, flags uint16) {
	binary.LittleEndian.PutUint32(d.ring[pos*16+8:], length)
	atomic.StoreUint32(word32(d.ring, pos*16+12), uint32(id)|uint32(flags)<<16)
}

// complete returns chain id (taken by next) with length bytes written, at
// the device's used position, which then moves past the chain's slots.
func (d *packedDevice) complete(id uint16, length uint32) {
	slots, ok := d.held[id]
	if !ok {
		d.t.Fatalf("device: completing id %d it never took", id)
	}
	delete(d.held, id)
	d.q.Use(id, uint32(id), length)
	d.q.Publish()
	d.move(slots) // the device moved by the chain's slots: mirror it
}

// completeAs writes a used descriptor claiming id (valid or not) and moves
// the used position by slots, whatever the device took.
func (d *packedDevice) completeAs(id uint16, length uint32, slots int) {
	d.q.UseAs(uint32(id), length, slots)
	d.q.Publish()
	d.move(slots)
}

// skip moves the used position to slot (usedPos+k)%size with the wrap
// counter flipped or not, as a device that lost its place would.
func (d *packedDevice) skip(k int, flip bool) {
	crossed := d.usedPos+k >= d.size
	delta := k
	if crossed != flip {
		delta += d.size
	}
	d.q.Skew(uint16(delta))
	d.usedPos = (d.usedPos + k) % d.size
	d.usedTotal += delta
	if flip {
		d.usedWrap = !d.usedWrap
	}
}

// move advances the mirrored used position by slots.
func (d *packedDevice) move(slots int) {
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

// wantsInterrupt asks the device model whether the driver wants an
// interrupt for what was published since its last decision (§2.8.10);
// oldAbs and nowAbs (usedTotal values) are for the reader: the test calls
// it after each completion, so that window is the model's.
func (d *packedDevice) wantsInterrupt(oldAbs, nowAbs int) bool { return d.q.NeedInterrupt() }

// checkPackedAccounting fails unless the packed queue's invariants hold.
func checkPackedAccounting(t testing.TB, q *Packed) {
	t.Helper()
	if err := q.Verify(); err != nil {
		t.Fatal(err)
	}
}

// isAvail reports whether flags make a slot available for wrap counter w.
func isAvail(flags uint16, w bool) bool {
	return (flags&packedAvail != 0) == w && (flags&packedUsed != 0) != w
}
