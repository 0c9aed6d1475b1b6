package virtqueue

import (
	"encoding/binary"
	"testing"

	"github.com/govirtio/govirtio/driver/devmodel"
)

// testDevice plays the device side of a split ring for this package's
// tests. Chains are taken and used entries written by devmodel.Queue: the
// device model's own ring code, written from the specification and not
// from this package, so that the two sides check each other. The test
// device adds only what a test observes or forges by hand: the driver's
// raw bytes and event fields, and used entries or indices no honest
// device writes. It trusts the driver (it is the driver that is under
// test) but fails the test on anything malformed.
type testDevice struct {
	t         testing.TB      // test to fail on malformed driver output
	mem       *HeapDMA        // resolves physical addresses
	size      int             // queue size
	q         *devmodel.Queue // the device side of the ring
	desc      []byte          // descriptor table, for tests that look at raw bytes
	avail     []byte          // avail ring, for the driver's flags and used_event
	used      []byte          // used ring, for raw entries and avail_event
	lastAvail uint16          // chains the device took
	usedIdx   uint16          // used.idx the device published last (or will, after rewindUsed)
}

func newTestDevice(t testing.TB, mem *HeapDMA, q *Split) *testDevice {
	t.Helper()
	n := q.Size()
	l := layoutFor(n)
	d, a, u := q.Addresses()
	dev := &testDevice{t: t, mem: mem, size: n}
	var err error
	if dev.q, err = devmodel.NewSplitQueue(&bufferMemory{mem: mem}, n, d, a, u); err != nil {
		t.Fatal(err)
	}
	dev.q.SetFeatures(q.opts.EventIdx, q.opts.Indirect)
	if dev.desc, err = mem.Slice(d, l.descBytes); err != nil {
		t.Fatal(err)
	}
	if dev.avail, err = mem.Slice(a, l.availBytes); err != nil {
		t.Fatal(err)
	}
	if dev.used, err = mem.Slice(u, l.usedBytes); err != nil {
		t.Fatal(err)
	}
	return dev
}

// availHdr returns avail.flags and avail.idx as published (acquire).
func (d *testDevice) availHdr() (flags, idx uint16) {
	w, err := wordAt(d.avail, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	return w.load()
}

// usedEvent returns used_event as the driver last wrote it.
func (d *testDevice) usedEvent() uint16 {
	h, err := halfAt(d.avail, layoutFor(d.size).usedEventOff)
	if err != nil {
		d.t.Fatal(err)
	}
	return h.load()
}

// setAvailEvent writes avail_event by hand, whatever the device took (the
// device model writes it only as the avail.idx it has seen).
func (d *testDevice) setAvailEvent(v uint16) {
	h, err := halfAt(d.used, layoutFor(d.size).availEventOff)
	if err != nil {
		d.t.Fatal(err)
	}
	h.store(v)
}

// setNoNotify sets or clears VIRTQ_USED_F_NO_NOTIFY (without EVENT_IDX).
func (d *testDevice) setNoNotify(on bool) { d.q.SetNotify(!on) }

// next takes the next published chain, following indirect tables.
func (d *testDevice) next() (head uint16, chain []Buffer, ok bool) {
	c, ok, err := d.q.Pop()
	if err != nil {
		d.t.Fatalf("device: %v", err)
	}
	if !ok {
		return 0, nil, false
	}
	d.lastAvail++
	for _, b := range c.Buffers {
		chain = append(chain, Buffer{Addr: b.Addr, Len: b.Len, Writable: b.Writable})
	}
	return c.Head, chain, true
}

// putUsed writes used element pos (free-running) by hand without
// publishing it: a stray write no honest device makes.
func (d *testDevice) putUsed(pos uint16, id, length uint32) {
	off := 4 + usedElemSize*(int(pos)&(d.size-1))
	binary.LittleEndian.PutUint32(d.used[off:], id)
	binary.LittleEndian.PutUint32(d.used[off+4:], length)
}

// setUsedIdx publishes used.idx idx whatever was written (release).
func (d *testDevice) setUsedIdx(idx uint16) {
	d.rewindUsed(idx)
	d.q.Publish()
}

// rewindUsed makes idx the device's next used.idx without publishing it:
// after a lie, the device behaves again from where the driver is.
func (d *testDevice) rewindUsed(idx uint16) {
	d.q.Skew(idx - d.usedIdx)
	d.usedIdx = idx
}

// complete writes one used element and publishes it.
func (d *testDevice) complete(id, length uint32) {
	d.q.UseAs(id, length, 1)
	d.q.Publish()
	d.usedIdx++
}

// bufferMemory is the driver's memory as the device model sees it in
// these tests: the rings and indirect tables are HeapDMA memory, but the
// buffers are made-up addresses (the driver side never touches their
// bytes), which resolve to scratch bytes.
type bufferMemory struct {
	mem     *HeapDMA // the rings and indirect tables
	scratch []byte   // what any other address resolves to
}

func (m *bufferMemory) Slice(phys uint64, n int) ([]byte, error) {
	if b, err := m.mem.Slice(phys, n); err == nil {
		return b, nil
	}
	if n > len(m.scratch) {
		m.scratch = make([]byte, n)
	}
	return m.scratch[:n], nil
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

func TestSplitLayoutCoversTheProtocolWords(t *testing.T) {
	tests := []struct {
		size              int
		desc, avail, used int
	}{
		{1, 16, 10, 16},
		{256, 4096, 520, 2056},
		{32768, 524288, 65544, 262152},
	}
	for _, tt := range tests {
		l := layoutFor(tt.size)
		if l.descBytes != tt.desc || l.availBytes != tt.avail || l.usedBytes != tt.used {
			t.Errorf("layoutFor(%d) = %d %d %d, want %d %d %d", tt.size, l.descBytes, l.availBytes, l.usedBytes, tt.desc, tt.avail, tt.used)
		}
	}
}
