package virtqueue

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestPackedNoLostWakeupsWithAConcurrentDevice is the packed twin of
// TestNoLostWakeupsWithAConcurrentDevice: the device runs in its own
// goroutine, both sides sleep until notified, each suppresses
// notifications while busy (RING_EVENT_FLAGS_DISABLE, or off_wrap with
// EVENT_IDX) and re-arms them before sleeping. A lost notification shows
// up as a side waiting forever, a misordered ring access as a wrong id or
// length (and as a report under -race).
func TestPackedNoLostWakeupsWithAConcurrentDevice(t *testing.T) {
	total := 20000
	if testing.Short() {
		total = 3000
	}
	for _, opts := range []Options{
		{Size: 1},
		{Size: 1, EventIdx: true},
		{Size: 8, Indirect: true},
		{Size: 7, EventIdx: true},
		{Size: 256, EventIdx: true, Indirect: true},
	} {
		t.Run(fmt.Sprintf("size %d event_idx=%v indirect=%v", opts.Size, opts.EventIdx, opts.Indirect), func(t *testing.T) {
			q, dev, _ := newPackedQueue(t, opts)
			kick := make(chan struct{}, 1) // driver -> device notifications
			irq := make(chan struct{}, 1)  // device -> driver interrupts
			done := make(chan struct{})
			devErr := make(chan error, 1)
			go func() { devErr <- runPackedDevice(dev, opts.EventIdx, kick, irq, done) }()
			defer func() {
				close(done)
				if err := <-devErr; err != nil {
					t.Error(err)
				}
			}()

			bufs := []Buffer{{Addr: 0x1000, Len: 12}, {Addr: 0x2000, Len: 1000, Writable: true}}
			if opts.Size == 1 {
				bufs = bufs[1:]
			}
			sent, got := 0, 0
			seen := make([]bool, q.Size()) // ids in flight
			for got < total {
				for sent < total {
					id, err := q.Add(bufs)
					if errors.Is(err, ErrFull) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					seen[id] = true
					sent++
				}
				if q.Kick() {
					notify(kick)
				}
				for {
					q.DisableInterrupts()
					for {
						id, n, ok, err := q.Pop()
						if !ok {
							break
						}
						if err != nil || !seen[id] || n != uint32(id)%1000 {
							t.Fatalf("Pop = %d %d %v (in flight %v)", id, n, err, seen[id])
						}
						seen[id] = false
						got++
					}
					if !q.EnableInterrupts() {
						break
					}
				}
				if q.InFlight() > 0 {
					select {
					case <-irq:
					case <-time.After(10 * time.Second):
						t.Fatalf("no interrupt with %d chains in flight: lost wakeup (sent %d got %d)", q.InFlight(), sent, got)
					}
				}
			}
			if s := q.Stats(); s.DeviceErrors() != 0 || s.Popped != uint64(total) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// runPackedDevice completes every chain it finds (writing id%1000 bytes)
// until done is closed, sleeping on kick when nothing is available, and
// interrupts as the driver's event suppression asks.
func runPackedDevice(dev *packedDevice, eventIdx bool, kick <-chan struct{}, irq chan<- struct{}, done <-chan struct{}) error {
	for {
		for {
			id, _, _, ok := dev.next()
			if !ok {
				break
			}
			old := dev.usedTotal
			// The flags store is sequentially consistent: the full
			// barrier before reading the driver's event area.
			dev.complete(id, uint32(id)%1000)
			if dev.wantsInterrupt(old, dev.usedTotal) {
				notify(irq)
			}
		}
		// Re-arm notifications, then look again before sleeping.
		if eventIdx {
			ow := uint16(dev.availPos)
			if dev.availWrap {
				ow |= eventWrapBit
			}
			dev.setDevEvent(ow, eventFlagDesc)
		} else {
			dev.setDevEvent(0, eventFlagEnable)
		}
		if dev.pending() {
			continue
		}
		select {
		case <-kick:
		case <-done:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("device: no notification in 10s at slot %d: lost wakeup", dev.availPos)
		}
		if !eventIdx {
			dev.setDevEvent(0, eventFlagDisable)
		}
	}
}
