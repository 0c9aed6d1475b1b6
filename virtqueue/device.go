package virtqueue

import (
	"encoding/binary"
	"fmt"
)

// SplitSizes returns how many bytes of a split ring of size entries the
// device must map (for example with HeapDMA.Slice) at each of the three
// addresses a driver gives to Transport.SetupQueue. They include the 2
// bytes of padding after used_event and avail_event that the memory
// protocol's 32-bit words cover (see the package doc); a driver built on
// this package always allocates them.
func SplitSizes(size int) (desc, avail, used int) {
	l := layoutFor(size)
	return l.descBytes, l.availBytes, l.usedBytes
}

// NeedEvent is vring_need_event (virtio 1.2 §2.7.10): with EVENT_IDX, the
// other side asked to be notified once its index passes event, and the
// index moved from old to new. Arithmetic is modulo 2^16.
func NeedEvent(event, new, old uint16) bool { return needEvent(event, new, old) }

// DeviceView gives a device implementation (a device model in tests) the
// accesses to a split ring's shared fields that follow the package's
// memory protocol, so that it synchronizes with Split correctly under the
// race detector and on any hardware. It does not parse descriptors (a
// device does that its own way, through its own memory mapping); it only
// touches the avail and used rings. Like Split, it belongs to one
// goroutine.
type DeviceView struct {
	size       int      // queue size, a power of two
	avail      []byte   // avail ring, SplitSizes' avail bytes
	used       []byte   // used ring, SplitSizes' used bytes
	availHdr   ringWord // avail.flags, avail.idx (driver-written)
	usedHdr    ringWord // used.flags, used.idx (device-written)
	usedEvent  half     // used_event (driver-written)
	availEvent half     // avail_event (device-written)
}

// NewDeviceView wraps the avail and used rings of a split queue of size
// entries, as the device mapped them. The slices must be at least as long
// as SplitSizes says and 4-byte aligned (HeapDMA memory is).
func NewDeviceView(size int, avail, used []byte) (*DeviceView, error) {
	if size < 1 || size > MaxSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("virtqueue: device view: size %d is not a power of two in 1..%d", size, MaxSize)
	}
	l := layoutFor(size)
	if len(avail) < l.availBytes || len(used) < l.usedBytes {
		return nil, fmt.Errorf("virtqueue: device view: rings of %d and %d bytes, want %d and %d", len(avail), len(used), l.availBytes, l.usedBytes)
	}
	v := &DeviceView{size: size, avail: avail[:l.availBytes], used: used[:l.usedBytes]}
	var err error
	if v.availHdr, err = wordAt(v.avail, 0); err != nil {
		return nil, err
	}
	if v.usedHdr, err = wordAt(v.used, 0); err != nil {
		return nil, err
	}
	if v.usedEvent, err = halfAt(v.avail, l.usedEventOff); err != nil {
		return nil, err
	}
	if v.availEvent, err = halfAt(v.used, l.availEventOff); err != nil {
		return nil, err
	}
	return v, nil
}

// Size is the queue size.
func (v *DeviceView) Size() int { return v.size }

// Avail returns avail.flags and avail.idx with an acquire load: the ring
// entries and descriptors the driver published up to idx may be read
// after it.
func (v *DeviceView) Avail() (flags, idx uint16) { return v.availHdr.load() }

// AvailEntry returns the head id in avail ring position pos (a free-running
// index, taken modulo the size). Read only positions below the idx Avail
// returned.
func (v *DeviceView) AvailEntry(pos uint16) uint16 {
	if v.size == 1 {
		// ring[0] shares its word with used_event: read it atomically.
		e, _ := v.usedEvent.w.load()
		return e
	}
	return binary.LittleEndian.Uint16(v.avail[4+2*(int(pos)&(v.size-1)):])
}

// UsedEvent returns used_event (EVENT_IDX): call it after PublishUsed,
// whose store is the full barrier the interrupt decision needs, and pass
// it to NeedEvent.
func (v *DeviceView) UsedEvent() uint16 { return v.usedEvent.load() }

// PutUsed writes the used element at position pos (free-running, taken
// modulo the size). The driver sees it after PublishUsed.
func (v *DeviceView) PutUsed(pos uint16, id, length uint32) {
	off := 4 + usedElemSize*(int(pos)&(v.size-1))
	binary.LittleEndian.PutUint32(v.used[off:], id)
	binary.LittleEndian.PutUint32(v.used[off+4:], length)
}

// PublishUsed stores used.flags and used.idx with one release store (and
// full barrier): elements written by PutUsed before it become visible to
// the driver.
func (v *DeviceView) PublishUsed(flags, idx uint16) { v.usedHdr.store(flags, idx) }

// SetAvailEvent writes avail_event (EVENT_IDX): the device wants a
// notification once avail.idx passes it. Read Avail again afterwards
// before sleeping: the store is the full barrier that makes that check
// race-free.
func (v *DeviceView) SetAvailEvent(idx uint16) { v.availEvent.store(idx) }
