package devmodel

import (
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

// sendOne transmits one small frame and waits for the device.
func (d *testDev) sendOne() {
	d.send(Header{}, pattern(60), false)
	d.notify(QueueTX)
}

func TestEventIdxSuppressesInterruptsUntilUsedEvent(t *testing.T) {
	feats := uint64(virtio.FeatureEventIdx)
	d := newTestDev(t, Config{Features: feats}, feats)
	// used.idx after each send, the used_event the driver sets before it,
	// and whether an interrupt is due (vring_need_event).
	steps := []struct {
		usedEvent uint16
		wantIRQ   bool
	}{
		{0, true},  // idx 0 -> 1 passes event 0
		{3, false}, // 1 -> 2
		{3, false}, // 2 -> 3
		{3, true},  // 3 -> 4 passes event 3
		{3, false}, // 4 -> 5: already told
		{9, false}, // 5 -> 6
	}
	var irqs uint64
	for i, s := range steps {
		d.tx.setUsedEvent(s.usedEvent)
		d.sendOne()
		if s.wantIRQ {
			irqs++
		}
		st := d.n.Stats()
		if st.Interrupts[QueueTX] != irqs {
			t.Fatalf("step %d: %d interrupts, want %d", i, st.Interrupts[QueueTX], irqs)
		}
		if got := d.tx.availEvent(); got != uint16(i+1) {
			t.Errorf("step %d: avail_event %d, want %d", i, got, i+1)
		}
	}
	if st := d.n.Stats(); st.InterruptsSuppressed[QueueTX] != uint64(len(steps))-irqs {
		t.Errorf("suppressed %d", st.InterruptsSuppressed[QueueTX])
	}
}

func TestNoInterruptFlagSuppressesInterrupts(t *testing.T) {
	d := newTestDev(t, Config{}, 0)
	qs, _, err := d.n.Interrupts(2)
	if err != nil {
		t.Fatal(err)
	}
	d.tx.setNoInterrupt(true)
	d.sendOne()
	d.sendOne()
	if pendingIRQ(qs[QueueTX]) {
		t.Fatal("interrupt despite NO_INTERRUPT")
	}
	d.tx.setNoInterrupt(false)
	d.sendOne()
	waitIRQ(t, qs[QueueTX])
	st := d.n.Stats()
	if st.Interrupts[QueueTX] != 1 || st.InterruptsSuppressed[QueueTX] != 2 || st.Notifications[QueueTX] != 3 {
		t.Errorf("stats %+v", st)
	}
	if f := load16(d.tx.ring[d.tx.usedOff:], 0); f&usedFNoNotify != 0 {
		t.Errorf("NO_NOTIFY left set after draining")
	}
}

func TestRxEventIdxPublishesAvailEventWhileWaiting(t *testing.T) {
	feats := FeatureMrgRxbuf | virtio.FeatureEventIdx
	d := newTestDev(t, Config{Features: feats, RxBacklog: 4}, feats)
	d.postPages(1, 1024)
	d.notify(QueueRX)
	d.n.Inject(Frame{Data: pattern(2000)})
	d.n.Sync()
	// The device holds the frame and wants to hear about any new buffer:
	// avail_event is the avail.idx it has seen.
	if got := d.rx.availEvent(); got != 1 {
		t.Fatalf("avail_event %d, want 1", got)
	}
}

func TestIndicesWrapAround(t *testing.T) {
	for _, feats := range []uint64{0, virtio.FeatureEventIdx} {
		d := newTestDev(t, Config{Features: feats, QueueSize: 8}, feats)
		// Start both sides just before the 16-bit indices wrap.
		const start = 65530
		// Both under the device lock, so no pass sees one without the other.
		d.n.mu.Lock()
		d.tx.availIdx, d.tx.lastUsed = start, start
		store16(d.tx.ring[d.tx.availOff:], 2, start)
		r := d.n.rings[QueueTX].(*ring)
		r.lastAvail, r.usedIdx = start, start
		r.publish()
		d.n.mu.Unlock()
		for i := 0; i < 20; i++ {
			d.tx.setUsedEvent(d.tx.lastUsed)
			d.sendOne()
			if _, _, ok := d.tx.pop(); !ok {
				t.Fatalf("features %#x: packet %d not completed", feats, i)
			}
		}
		if s := d.n.Stats(); s.Interrupts[QueueTX] != 20 || s.DriverErrors != 0 {
			t.Errorf("features %#x: stats %+v", feats, s)
		}
	}
}
