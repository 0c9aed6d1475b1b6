package devmodel

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
)

// The tests play the driver by hand: testQueue writes descriptors and the
// avail ring directly in HeapDMA memory (legacy contiguous layout, which
// modern devices accept too), so that each test controls every byte the
// device sees, including wrong ones.

// testBuf is one buffer of a chain a test posts.
type testBuf struct {
	b        []byte // the memory (from HeapDMA.Alloc)
	phys     uint64 // its physical address
	writable bool   // device-writable
}

// testQueue is a hand-driven split virtqueue.
type testQueue struct {
	t        testing.TB
	mem      *virtqueue.HeapDMA
	size     int
	ring     []byte // descriptor table, avail and used rings
	phys     uint64 // physical address of ring[0]
	availOff int    // offset of the avail ring in ring
	usedOff  int    // offset of the used ring in ring
	next     int    // next descriptor to hand out (round robin)
	availIdx uint16 // driver's avail.idx
	lastUsed uint16 // next used entry to read
}

// newTestQueue allocates a queue of size entries in mem.
func newTestQueue(t testing.TB, mem *virtqueue.HeapDMA, size int) *testQueue {
	t.Helper()
	availOff := 16 * size
	usedOff := (availOff + 6 + 2*size + 4095) &^ 4095
	total := usedOff + 8 + 8*size
	b, phys, err := mem.Alloc(total, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return &testQueue{t: t, mem: mem, size: size, ring: b, phys: phys, availOff: availOff, usedOff: usedOff}
}

// addrs returns desc, avail, used physical addresses for SetupQueue.
func (q *testQueue) addrs() (uint64, uint64, uint64) {
	return q.phys, q.phys + uint64(q.availOff), q.phys + uint64(q.usedOff)
}

// alloc returns fresh DMA memory of n bytes.
func alloc(t testing.TB, mem *virtqueue.HeapDMA, n int, writable bool) testBuf {
	t.Helper()
	b, phys, err := mem.Alloc(n, 16)
	if err != nil {
		t.Fatal(err)
	}
	return testBuf{b: b, phys: phys, writable: writable}
}

// writeDesc writes descriptor i.
func (q *testQueue) writeDesc(table []byte, i int, addr uint64, length uint32, flags, next uint16) {
	d := table[16*i:]
	binary.LittleEndian.PutUint64(d, addr)
	binary.LittleEndian.PutUint32(d[8:], length)
	binary.LittleEndian.PutUint16(d[12:], flags)
	binary.LittleEndian.PutUint16(d[14:], next)
}

// add writes a chain of direct descriptors and makes it available. It
// returns the head.
func (q *testQueue) add(bufs ...testBuf) uint16 {
	head := q.next
	for i, b := range bufs {
		d := (head + i) % q.size
		var flags uint16
		if b.writable {
			flags |= descFWrite
		}
		if i < len(bufs)-1 {
			flags |= descFNext
		}
		q.writeDesc(q.ring, d, b.phys, uint32(len(b.b)), flags, uint16((d+1)%q.size))
	}
	q.next = (head + len(bufs)) % q.size
	q.publish(uint16(head))
	return uint16(head)
}

// addIndirect puts the chain in an indirect table behind one descriptor.
func (q *testQueue) addIndirect(bufs ...testBuf) uint16 {
	tab := alloc(q.t, q.mem, 16*len(bufs), false)
	for i, b := range bufs {
		var flags uint16
		if b.writable {
			flags |= descFWrite
		}
		if i < len(bufs)-1 {
			flags |= descFNext
		}
		q.writeDesc(tab.b, i, b.phys, uint32(len(b.b)), flags, uint16(i+1))
	}
	head := q.next
	q.next = (head + 1) % q.size
	q.writeDesc(q.ring, head, tab.phys, uint32(len(tab.b)), descFIndirect, 0)
	q.publish(uint16(head))
	return uint16(head)
}

// publish puts head in the avail ring and bumps avail.idx (release).
func (q *testQueue) publish(head uint16) {
	slot := int(q.availIdx) % q.size
	binary.LittleEndian.PutUint16(q.ring[q.availOff+4+2*slot:], head)
	q.availIdx++
	store16(q.ring[q.availOff:], 2, q.availIdx)
}

// pop returns the next used element, if any.
func (q *testQueue) pop() (id, length uint32, ok bool) {
	if load16(q.ring[q.usedOff:], 2) == q.lastUsed {
		return 0, 0, false
	}
	e := q.ring[q.usedOff+4+8*(int(q.lastUsed)%q.size):]
	q.lastUsed++
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]), true
}

// usedIdx is the device's used.idx.
func (q *testQueue) usedIdx() uint16 { return load16(q.ring[q.usedOff:], 2) }

// setUsedEvent writes used_event (EVENT_IDX).
func (q *testQueue) setUsedEvent(v uint16) { store16(q.ring[q.availOff:], 4+2*q.size, v) }

// availEvent reads avail_event (EVENT_IDX).
func (q *testQueue) availEvent() uint16 { return load16(q.ring[q.usedOff:], 4+8*q.size) }

// setNoInterrupt sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT.
func (q *testQueue) setNoInterrupt(on bool) {
	var f uint16
	if on {
		f = availFNoInterrupt
	}
	store16(q.ring[q.availOff:], 0, f)
}

// testDev is a device with its queues set up and DRIVER_OK.
type testDev struct {
	t   testing.TB
	mem *virtqueue.HeapDMA
	n   *Net
	rx  *testQueue
	tx  *testQueue
	ctl *testQueue // nil without CTRL_VQ
}

// newTestDev brings a device up with cfg, accepting the features accept
// (intersected with what it offers) the way a driver does (virtio 1.2
// §3.1.1).
func newTestDev(t testing.TB, cfg Config, accept uint64) *testDev {
	t.Helper()
	mem := &virtqueue.HeapDMA{}
	cfg.Mem = mem
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 64
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Reset(); err != nil {
		t.Fatal(err)
	}
	n.SetStatus(virtio.StatusAcknowledge)
	n.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
	// A driver always accepts VERSION_1 when offered (virtio 1.2 §6.1).
	n.SetDriverFeatures((accept | virtio.FeatureVersion1) & n.DeviceFeatures())
	st := virtio.StatusAcknowledge | virtio.StatusDriver
	if !n.Legacy() {
		st |= virtio.StatusFeaturesOK
		n.SetStatus(st)
		if n.Status()&virtio.StatusFeaturesOK == 0 {
			t.Fatalf("FEATURES_OK refused: %v", n.Stats().LastError)
		}
	}
	d := &testDev{t: t, mem: mem, n: n}
	d.rx = d.setup(QueueRX)
	d.tx = d.setup(QueueTX)
	if n.NumQueues() > 2 {
		d.ctl = d.setup(QueueCtrl)
	}
	n.SetStatus(st | virtio.StatusDriverOK)
	return d
}

// setup creates and registers queue q.
func (d *testDev) setup(q int) *testQueue {
	tq := newTestQueue(d.t, d.mem, d.n.QueueMaxSize(q))
	desc, avail, used := tq.addrs()
	if err := d.n.SetupQueue(q, tq.size, desc, avail, used); err != nil {
		d.t.Fatal(err)
	}
	return tq
}

// notify kicks queue q and waits for the device to process it.
func (d *testDev) notify(q int) {
	d.n.Notify(q)
	d.n.Sync()
}

// waitIRQ waits for an interrupt, failing the test after a while.
func waitIRQ(t testing.TB, irq virtio.Interrupt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := irq.Wait(ctx); err != nil {
		t.Fatalf("interrupt did not fire: %v", err)
	}
}

// pendingIRQ reports whether irq has fired, without blocking long.
func pendingIRQ(irq virtio.Interrupt) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	return irq.Wait(ctx) == nil
}

// newTestMem returns fresh driver memory.
func newTestMem() *virtqueue.HeapDMA { return &virtqueue.HeapDMA{} }
