package virtqueue

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestNoLostWakeupsWithAConcurrentDevice runs the device in its own
// goroutine, the way a device model does, with both sides sleeping until
// the other notifies them. Each side suppresses notifications while busy
// and re-arms them before sleeping; a notification lost by the driver's
// Kick/EnableInterrupts protocol shows up as a side waiting forever (the
// test times out), a torn or misordered ring access as a wrong head or
// length (and as a report under -race).
func TestNoLostWakeupsWithAConcurrentDevice(t *testing.T) {
	total := 20000
	if testing.Short() {
		total = 3000
	}
	for _, opts := range []Options{
		{Size: 1},
		{Size: 1, EventIdx: true},
		{Size: 8, Indirect: true},
		{Size: 8, EventIdx: true},
		{Size: 256, EventIdx: true, Indirect: true, Legacy: true},
	} {
		t.Run(fmt.Sprintf("size %d event_idx=%v", opts.Size, opts.EventIdx), func(t *testing.T) {
			q, dev, _ := newQueue(t, opts)
			kick := make(chan struct{}, 1) // driver -> device notifications
			irq := make(chan struct{}, 1)  // device -> driver interrupts
			done := make(chan struct{})
			devErr := make(chan error, 1)
			go func() { devErr <- runDevice(dev, opts.EventIdx, kick, irq, done) }()
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
			seen := make([]bool, q.Size()) // heads in flight
			for got < total {
				for sent < total {
					h, err := q.Add(bufs)
					if errors.Is(err, ErrFull) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					seen[h] = true
					sent++
				}
				if q.Kick() {
					notify(kick)
				}
				for {
					q.DisableInterrupts()
					for {
						h, n, ok, err := q.Pop()
						if !ok {
							break
						}
						if err != nil || !seen[h] || n != uint32(h)%1000 {
							t.Fatalf("Pop = %d %d %v (in flight %v)", h, n, err, seen[h])
						}
						seen[h] = false
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

// notify sends a wakeup unless one is already pending.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// runDevice completes every chain it finds (writing id%1000 bytes) until
// done is closed, sleeping on kick when the ring is empty, and interrupts
// as the driver's suppression state asks.
func runDevice(dev *testDevice, eventIdx bool, kick <-chan struct{}, irq chan<- struct{}, done <-chan struct{}) error {
	for {
		for {
			h, _, ok := dev.next()
			if !ok {
				break
			}
			dev.complete(uint32(h), uint32(h)%1000)
			// The device model's publish is the full barrier between
			// publishing used.idx and reading the driver's suppression
			// state (§2.7.13.4); it decides as a Net does.
			if dev.q.NeedInterrupt() {
				notify(irq)
			}
		}
		// Re-arm notifications, then look again before sleeping.
		dev.q.SetNotify(true)
		if dev.q.Pending() {
			continue
		}
		select {
		case <-kick:
		case <-done:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("device: no notification in 10s with %d chains taken: lost wakeup", dev.lastAvail)
		}
		if !eventIdx {
			dev.q.SetNotify(false)
		}
	}
}
