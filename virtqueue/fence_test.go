package virtqueue

import (
	"fmt"
	"testing"
)

// fencedDMA is HeapDMA with a Fence that runs a test's hook, which plays
// a device acting at that very moment.
type fencedDMA struct {
	*HeapDMA
	hook func()
}

func (m *fencedDMA) Fence() {
	if m.hook != nil {
		m.hook()
	}
}

// TestFenceSitsBetweenPublishingAndReadingTheDevice checks that both rings
// call their memory's Fence after what the driver publishes is visible and
// before they read the device's reply to it: a device that re-arms
// notifications (or completes a chain) during the fence, having missed
// the driver's store, is seen. This is the guarantee that a platform
// whose CPU barriers the device does not observe (QEMU's TCG with one
// vCPU) gets from the fence.
func TestFenceSitsBetweenPublishingAndReadingTheDevice(t *testing.T) {
	buf := []Buffer{{Addr: 0x1000, Len: 64, Writable: true}}
	for _, eventIdx := range []bool{false, true} {
		o := Options{Size: 8, EventIdx: eventIdx}
		t.Run(fmt.Sprintf("split kick event_idx=%v", eventIdx), func(t *testing.T) {
			mem := &fencedDMA{HeapDMA: &HeapDMA{}}
			q, err := NewSplit(mem, o)
			if err != nil {
				t.Fatal(err)
			}
			dev := newTestDevice(t, mem.HeapDMA, q)
			// The device asks not to be notified of the next entry.
			if eventIdx {
				dev.setAvailEvent(100)
			} else {
				dev.setNoNotify(true)
			}
			if _, err := q.Add(buf); err != nil {
				t.Fatal(err)
			}
			fenced := false
			mem.hook = func() {
				fenced = true
				if _, idx := dev.availHdr(); idx != 1 {
					t.Errorf("avail.idx %d at the fence, want 1 published", idx)
				}
				// It re-arms, having found the ring empty.
				if eventIdx {
					dev.setAvailEvent(0)
				} else {
					dev.setNoNotify(false)
				}
			}
			if !q.Kick() || !fenced {
				t.Fatalf("Kick missed a device that re-armed during the fence (fenced %v)", fenced)
			}
		})
		t.Run(fmt.Sprintf("split interrupts event_idx=%v", eventIdx), func(t *testing.T) {
			mem := &fencedDMA{HeapDMA: &HeapDMA{}}
			q, err := NewSplit(mem, o)
			if err != nil {
				t.Fatal(err)
			}
			dev := newTestDevice(t, mem.HeapDMA, q)
			if _, err := q.Add(buf); err != nil {
				t.Fatal(err)
			}
			q.Kick()
			h, _, ok := dev.next()
			if !ok {
				t.Fatal("device found no chain")
			}
			q.DisableInterrupts()
			mem.hook = func() {
				if eventIdx {
					if ev := dev.usedEvent(); ev != 0 {
						t.Errorf("used_event %d at the fence, want 0 (re-armed)", ev)
					}
				} else if flags, _ := dev.availHdr(); flags != 0 {
					t.Errorf("avail.flags %#x at the fence, want interrupts on", flags)
				}
				// It completes the chain, having read the old state.
				dev.complete(uint32(h), 1)
			}
			if !q.EnableInterrupts() {
				t.Fatal("EnableInterrupts missed a chain completed during the fence")
			}
		})
		t.Run(fmt.Sprintf("packed kick event_idx=%v", eventIdx), func(t *testing.T) {
			mem := &fencedDMA{HeapDMA: &HeapDMA{}}
			q, err := NewPacked(mem, o)
			if err != nil {
				t.Fatal(err)
			}
			dev := newPackedDevice(t, mem.HeapDMA, q)
			dev.setDevEvent(0, eventFlagDisable)
			if _, err := q.Add(buf); err != nil {
				t.Fatal(err)
			}
			fenced := false
			mem.hook = func() {
				fenced = true
				if !dev.pending() {
					t.Error("the chain is not available at the fence")
				}
				packedConcurrent{dev, eventIdx}.arm()
			}
			if !q.Kick() || !fenced {
				t.Fatalf("Kick missed a device that re-armed during the fence (fenced %v)", fenced)
			}
		})
		t.Run(fmt.Sprintf("packed interrupts event_idx=%v", eventIdx), func(t *testing.T) {
			mem := &fencedDMA{HeapDMA: &HeapDMA{}}
			q, err := NewPacked(mem, o)
			if err != nil {
				t.Fatal(err)
			}
			dev := newPackedDevice(t, mem.HeapDMA, q)
			if _, err := q.Add(buf); err != nil {
				t.Fatal(err)
			}
			q.Kick()
			id, _, _, ok := dev.next()
			if !ok {
				t.Fatal("device found no chain")
			}
			q.DisableInterrupts()
			mem.hook = func() {
				if _, flags := dev.drvEvent(); flags == eventFlagDisable {
					t.Error("interrupts still disabled at the fence")
				}
				dev.complete(id, 1)
			}
			if !q.EnableInterrupts() {
				t.Fatal("EnableInterrupts missed a chain completed during the fence")
			}
		})
	}
}
