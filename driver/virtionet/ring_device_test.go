package virtionet

import (
	"testing"

	"github.com/govirtio/govirtio/driver/devmodel"
	"github.com/govirtio/govirtio/virtqueue"
)

// ringDevice is what the RX and TX unit and fuzz tests run over: the real
// virtqueue.Split on HeapDMA, and the device side of the ring from
// driver/devmodel (the ring code a devmodel.Net runs), through which the
// test plays the device: it takes the chains the driver published (after
// its Kick), writes into their pages, and writes used entries, honest or
// hostile, that the driver reads with the real Split.Pop and its real
// contract (a device error is ok=true with a *virtqueue.DeviceError).
type ringDevice struct {
	*virtqueue.Split // the driver's queue under the ring under test

	t        testing.TB                    // the running test
	mem      *virtqueue.HeapDMA            // driver memory, as the device reaches it
	dev      *devmodel.Queue               // the device side of the ring
	size     int                           // queue size
	taken    []uint16                      // chains taken from the ring, not yet handed to the test (takeAvail's queue)
	chains   map[uint16][]virtqueue.Buffer // chains the device took and has not returned, by head
	store    [][]virtqueue.Buffer          // per head: reusable chain storage (no allocation per chain)
	held     map[uint64]bool               // writable buffer addresses of those chains
	reposted int                           // chains taken with a writable buffer the device already held (must stay 0)
	intrOn   bool                          // the driver's interrupts on (EnableInterrupts since the last DisableInterrupts)
}

// newRingDevice builds a split queue of size entries on mem and its device
// side.
func newRingDevice(t testing.TB, mem *virtqueue.HeapDMA, size int) *ringDevice {
	return newRingDeviceOpts(t, mem, virtqueue.Options{Size: size})
}

// newRingDeviceOpts is newRingDevice with the queue's options (INDIRECT_DESC,
// EVENT_IDX), negotiated on both sides.
func newRingDeviceOpts(t testing.TB, mem *virtqueue.HeapDMA, o virtqueue.Options) *ringDevice {
	t.Helper()
	q, err := virtqueue.NewSplit(mem, o)
	if err != nil {
		t.Fatal(err)
	}
	desc, avail, used := q.Addresses()
	dev, err := devmodel.NewSplitQueue(mem, o.Size, desc, avail, used)
	if err != nil {
		t.Fatal(err)
	}
	dev.SetFeatures(o.EventIdx, o.Indirect)
	return &ringDevice{
		Split: q, t: t, mem: mem, dev: dev, size: o.Size,
		chains: map[uint16][]virtqueue.Buffer{}, store: make([][]virtqueue.Buffer, o.Size),
		held: map[uint64]bool{}, intrOn: true,
	}
}

// DisableInterrupts and EnableInterrupts are the real queue's, recorded
// for tests that look at what the driver asked.
func (d *ringDevice) DisableInterrupts() { d.intrOn = false; d.Split.DisableInterrupts() }
func (d *ringDevice) EnableInterrupts() bool {
	d.intrOn = true
	return d.Split.EnableInterrupts()
}

// takeAll takes every chain the driver published from the ring; a chain
// the device model refuses is a driver bug and fails the test.
func (d *ringDevice) takeAll() {
	for {
		c, ok, err := d.dev.Pop()
		if err != nil {
			d.t.Fatalf("device: the driver published a bad chain: %v", err)
		}
		if !ok {
			return
		}
		bufs := d.store[c.Head][:0]
		for _, b := range c.Buffers {
			bufs = append(bufs, virtqueue.Buffer{Addr: b.Addr, Len: b.Len, Writable: b.Writable})
			if b.Writable {
				if d.held[b.Addr] {
					d.reposted++
				}
				d.held[b.Addr] = true
			}
		}
		d.store[c.Head] = bufs
		d.chains[c.Head] = bufs
		d.taken = append(d.taken, c.Head)
	}
}

// takeAvail returns the oldest chain the driver published that the test
// has not been handed yet, as the device reads it from the avail ring.
func (d *ringDevice) takeAvail() (uint16, []virtqueue.Buffer, bool) {
	if len(d.taken) == 0 {
		d.takeAll()
	}
	if len(d.taken) == 0 {
		return 0, nil, false
	}
	head := d.taken[0]
	d.taken = append(d.taken[:0], d.taken[1:]...) // keep the array: no allocation
	return head, d.chains[head], true
}

// inFlight returns the chains the driver published and the device has not
// returned, by head.
func (d *ringDevice) inFlight() map[uint16][]virtqueue.Buffer {
	d.takeAll()
	return d.chains
}

// pushUsed writes and publishes a used entry claiming id and n bytes
// written; a hostile test lies in either. The device first takes every
// chain published, so that whatever id it names, it names a chain it took
// (or none): a device cannot return a chain it has not read, and the
// driver, which frees what a used entry names, would otherwise post a
// chain again while the device still has it in its avail ring. A chain
// the device held under id is returned.
func (d *ringDevice) pushUsed(id, n uint32) {
	d.takeAll()
	if id < uint32(d.size) {
		for i, h := range d.taken {
			if uint32(h) == id {
				d.taken = append(d.taken[:i], d.taken[i+1:]...)
				break
			}
		}
		for _, b := range d.chains[uint16(id)] {
			delete(d.held, b.Addr)
		}
		delete(d.chains, uint16(id))
	}
	d.dev.UseAs(id, n, 1)
	d.dev.Publish()
}
