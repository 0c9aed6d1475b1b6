package virtqueue

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestNoLostWakeupsWithAConcurrentDevice runs the device in its own
// goroutine, the way a device model does, with both sides sleeping until
// the other notifies them, over split and packed rings. Each side
// suppresses notifications while busy (packed: RING_EVENT_FLAGS_DISABLE,
// or off_wrap with EVENT_IDX) and re-arms them before sleeping; a
// notification lost by the driver's Kick/EnableInterrupts protocol shows up
// as a side waiting forever (the test times out), a torn or misordered ring
// access as a wrong id or length (and as a report under -race).
func TestNoLostWakeupsWithAConcurrentDevice(t *testing.T) {
	total := 20000
	if testing.Short() {
		total = 3000
	}
	type ring struct {
		name string
		opts []Options
		open func(testing.TB, Options) (Queue, concurrentDevice)
	}
	for _, r := range []ring{
		{"split", []Options{
			{Size: 1},
			{Size: 1, EventIdx: true},
			{Size: 8, Indirect: true},
			{Size: 8, EventIdx: true},
			{Size: 256, EventIdx: true, Indirect: true, Legacy: true},
		}, func(t testing.TB, o Options) (Queue, concurrentDevice) {
			q, dev, _ := newQueue(t, o)
			return q, splitConcurrent{dev, o.EventIdx}
		}},
		{"packed", []Options{
			{Size: 1},
			{Size: 1, EventIdx: true},
			{Size: 8, Indirect: true},
			{Size: 7, EventIdx: true},
			{Size: 256, EventIdx: true, Indirect: true},
		}, func(t testing.TB, o Options) (Queue, concurrentDevice) {
			q, dev, _ := newPackedQueue(t, o)
			return q, packedConcurrent{dev, o.EventIdx}
		}},
	} {
		for _, opts := range r.opts {
			t.Run(fmt.Sprintf("%s size %d event_idx=%v indirect=%v", r.name, opts.Size, opts.EventIdx, opts.Indirect), func(t *testing.T) {
				q, dev := r.open(t, opts)
				kick := make(chan struct{}, 1) // driver -> device notifications
				irq := make(chan struct{}, 1)  // device -> driver interrupts
				done := make(chan struct{})
				devErr := make(chan error, 1)
				go func() { devErr <- runDevice(dev, kick, irq, done) }()
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
				driveConcurrently(t, q, bufs, total, kick, irq)
			})
		}
	}
}

// driveConcurrently is the driver's side: it adds chains while there is
// room, kicks as the device asks, drains the used side with interrupts
// suppressed and re-arms them before sleeping, until total chains came
// back, each with the length its id says.
func driveConcurrently(t *testing.T, q Queue, bufs []Buffer, total int, kick chan<- struct{}, irq <-chan struct{}) {
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
}

// notify sends a wakeup unless one is already pending.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// concurrentDevice is the device's side of a ring for runDevice.
type concurrentDevice interface {
	// serve completes every chain available (writing id%1000 bytes) and
	// interrupts as the driver's suppression state asks.
	serve(irq chan<- struct{})
	// arm re-enables notifications and reports whether chains arrived
	// meanwhile; disarm suppresses them again after a wakeup.
	arm() (pending bool)
	disarm()
	// where says how far the device got, for a lost-wakeup report.
	where() string
}

// runDevice serves until done is closed, sleeping on kick when the ring
// is empty, with notifications re-armed before each sleep.
func runDevice(dev concurrentDevice, kick <-chan struct{}, irq chan<- struct{}, done <-chan struct{}) error {
	for {
		dev.serve(irq)
		if dev.arm() {
			continue
		}
		select {
		case <-kick:
		case <-done:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("device: no notification in 10s %s: lost wakeup", dev.where())
		}
		dev.disarm()
	}
}

// splitConcurrent is a split ring's device side.
type splitConcurrent struct {
	dev      *testDevice
	eventIdx bool
}

func (d splitConcurrent) serve(irq chan<- struct{}) {
	for {
		h, _, ok := d.dev.next()
		if !ok {
			return
		}
		d.dev.complete(uint32(h), uint32(h)%1000)
		// The device model's publish is the full barrier between
		// publishing used.idx and reading the driver's suppression
		// state (§2.7.13.4); it decides as a Net does.
		if d.dev.q.NeedInterrupt() {
			notify(irq)
		}
	}
}

func (d splitConcurrent) arm() bool {
	d.dev.q.SetNotify(true)
	return d.dev.q.Pending()
}

func (d splitConcurrent) disarm() {
	if !d.eventIdx {
		d.dev.q.SetNotify(false)
	}
}

func (d splitConcurrent) where() string {
	return fmt.Sprintf("with %d chains taken", d.dev.lastAvail)
}

// packedConcurrent is a packed ring's device side.
type packedConcurrent struct {
	dev      *packedDevice
	eventIdx bool
}

func (d packedConcurrent) serve(irq chan<- struct{}) {
	for {
		id, _, _, ok := d.dev.next()
		if !ok {
			return
		}
		old := d.dev.usedTotal
		// The flags store is sequentially consistent: the full barrier
		// before reading the driver's event area.
		d.dev.complete(id, uint32(id)%1000)
		if d.dev.wantsInterrupt(old, d.dev.usedTotal) {
			notify(irq)
		}
	}
}

func (d packedConcurrent) arm() bool {
	if d.eventIdx {
		ow := uint16(d.dev.availPos)
		if d.dev.availWrap {
			ow |= eventWrapBit
		}
		d.dev.setDevEvent(ow, eventFlagDesc)
	} else {
		d.dev.setDevEvent(0, eventFlagEnable)
	}
	return d.dev.pending()
}

func (d packedConcurrent) disarm() {
	if !d.eventIdx {
		d.dev.setDevEvent(0, eventFlagDisable)
	}
}

func (d packedConcurrent) where() string {
	return fmt.Sprintf("at slot %d", d.dev.availPos)
}
