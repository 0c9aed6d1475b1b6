package virtqueue

import (
	"encoding/binary"
	"testing"
)

// testDevice plays the device side of a split ring by hand, through the
// memory HeapDMA resolves, with DeviceView for the shared ring fields. It
// trusts the driver (it is the driver that is under test) but fails the
// test on anything malformed.
type testDevice struct {
	t         testing.TB  // test to fail on malformed driver output
	mem       *HeapDMA    // resolves physical addresses
	size      int         // queue size
	view      *DeviceView // the avail and used rings
	desc      []byte      // descriptor table
	used      []byte      // used ring, for tests that look at raw bytes
	lastAvail uint16      // next avail entry the device will take
	usedIdx   uint16      // used.idx the device published last
	usedFlags uint16      // used.flags as the device wrote it
}

func newTestDevice(t testing.TB, mem *HeapDMA, q *Split) *testDevice {
	t.Helper()
	n := q.Size()
	descBytes, availBytes, usedBytes := SplitSizes(n)
	d, a, u := q.Addresses()
	dev := &testDevice{t: t, mem: mem, size: n}
	var err error
	if dev.desc, err = mem.Slice(d, descBytes); err != nil {
		t.Fatal(err)
	}
	avail, err := mem.Slice(a, availBytes)
	if err != nil {
		t.Fatal(err)
	}
	if dev.used, err = mem.Slice(u, usedBytes); err != nil {
		t.Fatal(err)
	}
	if dev.view, err = NewDeviceView(n, avail, dev.used); err != nil {
		t.Fatal(err)
	}
	return dev
}

// availHdr returns avail.flags and avail.idx as published (acquire).
func (d *testDevice) availHdr() (flags, idx uint16) { return d.view.Avail() }

// usedEvent returns used_event as the driver last wrote it.
func (d *testDevice) usedEvent() uint16 { return d.view.UsedEvent() }

// setAvailEvent writes avail_event.
func (d *testDevice) setAvailEvent(v uint16) { d.view.SetAvailEvent(v) }

// setNoNotify sets or clears VIRTQ_USED_F_NO_NOTIFY.
func (d *testDevice) setNoNotify(on bool) {
	d.usedFlags = 0
	if on {
		d.usedFlags = usedFNoNotify
	}
	d.view.PublishUsed(d.usedFlags, d.usedIdx)
}

// next takes the next published chain, following indirect tables.
func (d *testDevice) next() (head uint16, chain []Buffer, ok bool) {
	_, idx := d.availHdr()
	if idx == d.lastAvail {
		return 0, nil, false
	}
	entry := d.view.AvailEntry(d.lastAvail)
	d.lastAvail++
	table, id := d.desc, entry
	for hops := 0; ; hops++ {
		if int(id) >= len(table)/descSize || hops > d.size {
			d.t.Fatalf("device: chain from head %d: bad descriptor %d", entry, id)
		}
		dsc := table[int(id)*descSize:]
		addr := binary.LittleEndian.Uint64(dsc)
		length := binary.LittleEndian.Uint32(dsc[8:])
		flags := binary.LittleEndian.Uint16(dsc[12:])
		nxt := binary.LittleEndian.Uint16(dsc[14:])
		if flags&descFIndirect != 0 {
			if flags&descFNext != 0 || hops != 0 || length%descSize != 0 {
				d.t.Fatalf("device: bad indirect descriptor flags %#x len %d", flags, length)
			}
			t, err := d.mem.Slice(addr, int(length))
			if err != nil {
				d.t.Fatalf("device: indirect table: %v", err)
			}
			table, id = t, 0
			continue
		}
		chain = append(chain, Buffer{Addr: addr, Len: length, Writable: flags&descFWrite != 0})
		if flags&descFNext == 0 {
			return entry, chain, true
		}
		id = nxt
	}
}

// putUsed writes used element pos (free-running) without publishing it.
func (d *testDevice) putUsed(pos uint16, id, length uint32) { d.view.PutUsed(pos, id, length) }

// setUsedIdx publishes used.idx (release).
func (d *testDevice) setUsedIdx(idx uint16) {
	d.usedIdx = idx
	d.view.PublishUsed(d.usedFlags, idx)
}

// complete writes one used element and publishes it.
func (d *testDevice) complete(id, length uint32) {
	d.putUsed(d.usedIdx, id, length)
	d.setUsedIdx(d.usedIdx + 1)
}

// newQueue builds a queue on fresh HeapDMA memory and its device.
func newQueue(t testing.TB, o Options) (*Split, *testDevice, *HeapDMA) {
	t.Helper()
	mem := &HeapDMA{}
	q, err := NewSplit(mem, o)
	if err != nil {
		t.Fatalf("NewSplit(%+v): %v", o, err)
	}
	return q, newTestDevice(t, mem, q), mem
}

// checkAccounting fails unless the queue's invariants hold (Verify) and
// free descriptors plus those of the chains in flight are all of them.
func checkAccounting(t testing.TB, q *Split) {
	t.Helper()
	if err := q.Verify(); err != nil {
		t.Fatal(err)
	}
	descs, chains := 0, 0
	for _, c := range q.chainDescs {
		if c != 0 {
			descs += int(c)
			chains++
		}
	}
	if q.Free()+descs != q.Size() || chains != q.InFlight() {
		t.Fatalf("accounting: free %d + in-flight descriptors %d != size %d, or %d chains != InFlight %d",
			q.Free(), descs, q.Size(), chains, q.InFlight())
	}
}
