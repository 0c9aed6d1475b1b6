package virtqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

func TestNewPackedValidatesSizeAndLaysOutRings(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"size 0 is refused", Options{Size: 0}, true},
		{"size 32769 is beyond the maximum", Options{Size: 32769}, true},
		{"a legacy layout is refused", Options{Size: 8, Legacy: true}, true},
		{"indirect table longer than the queue is refused", Options{Size: 8, Indirect: true, IndirectMax: 9}, true},
		{"size 1", Options{Size: 1}, false},
		{"size 3 need not be a power of two", Options{Size: 3, EventIdx: true}, false},
		{"size 256 with every feature", Options{Size: 256, EventIdx: true, Indirect: true}, false},
		{"size 32768", Options{Size: 32768, EventIdx: true, Indirect: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := &HeapDMA{}
			q, err := NewPacked(mem, tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewPacked(%+v) succeeded", tt.opts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := tt.opts.Size
			if q.Size() != n || q.Free() != n || q.InFlight() != 0 {
				t.Fatalf("Size %d Free %d InFlight %d", q.Size(), q.Free(), q.InFlight())
			}
			r, d, v := q.Addresses()
			if r%16 != 0 || d%4 != 0 || v%4 != 0 {
				t.Errorf("misaligned: ring %#x driver %#x device %#x", r, d, v)
			}
			rb, db, vb := PackedSizes(n)
			for _, a := range []struct {
				phys uint64
				n    int
			}{{r, rb}, {d, db}, {v, vb}} {
				if _, err := mem.Slice(a.phys, a.n); err != nil {
					t.Errorf("area at %#x: %v", a.phys, err)
				}
			}
			checkPackedAccounting(t, q)
		})
	}
}

func TestPackedChainsReachTheDeviceAndComeBack(t *testing.T) {
	chains := []struct {
		name string
		bufs []Buffer
	}{
		{"one readable buffer", []Buffer{{Addr: 0x1000, Len: 10}}},
		{"one writable buffer", []Buffer{{Addr: 0x2000, Len: 4096, Writable: true}}},
		{"header then payload", []Buffer{{Addr: 0x3000, Len: 12}, {Addr: 0x4000, Len: 1500}}},
		{"two readable, three writable", []Buffer{
			{Addr: 0x5000, Len: 1}, {Addr: 0x5100, Len: 2},
			{Addr: 0x6000, Len: 3, Writable: true}, {Addr: 0x7000, Len: 4, Writable: true}, {Addr: 0x8000, Len: 5, Writable: true},
		}},
	}
	for _, opts := range []Options{{Size: 8}, {Size: 8, Indirect: true}, {Size: 7, EventIdx: true}} {
		for _, c := range chains {
			t.Run(fmt.Sprintf("%s/size=%d,indirect=%v", c.name, opts.Size, opts.Indirect), func(t *testing.T) {
				q, dev, _ := newPackedQueue(t, opts)
				// Several laps, so that chains cross the end of the ring
				// and both wrap counter values are used.
				for round := range 3 * opts.Size {
					id, err := q.Add(c.bufs)
					if err != nil {
						t.Fatalf("round %d: Add: %v", round, err)
					}
					q.Kick()
					did, got, slots, ok := dev.next()
					if !ok || did != id {
						t.Fatalf("round %d: device took id %d ok %v, Add returned %d", round, did, ok, id)
					}
					if fmt.Sprint(got) != fmt.Sprint(c.bufs) {
						t.Fatalf("round %d: device saw %v, want %v", round, got, c.bufs)
					}
					wantSlots := len(c.bufs)
					if opts.Indirect && len(c.bufs) > 1 {
						wantSlots = 1
					}
					if slots != wantSlots {
						t.Fatalf("round %d: chain took %d slots, want %d", round, slots, wantSlots)
					}
					var w uint32
					for _, b := range c.bufs {
						if b.Writable {
							w += b.Len
						}
					}
					dev.complete(id, w)
					pid, n, ok, err := q.Pop()
					if !ok || err != nil || pid != id || n != w {
						t.Fatalf("round %d: Pop = %d %d %v %v, want %d %d", round, pid, n, ok, err, id, w)
					}
					if _, _, ok, _ := q.Pop(); ok {
						t.Fatalf("round %d: a second Pop found an entry", round)
					}
					checkPackedAccounting(t, q)
				}
			})
		}
	}
}

// Ids name chains, positions name slots: a device completing out of order
// writes used descriptors in its own order at its own position, which
// moves by each completed chain's slot count.
func TestPackedOutOfOrderCompletionsFollowIdsNotPositions(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 8})
	rd := Buffer{Addr: 0x1000, Len: 10}
	wr := Buffer{Addr: 0x2000, Len: 100, Writable: true}
	shapes := [][]Buffer{{rd, wr}, {wr}, {rd, rd, wr}} // 2, 1, 3 slots
	for lap := range 5 {
		var ids []uint16
		for _, s := range shapes {
			id, err := q.Add(s)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		q.Kick()
		for range shapes {
			if _, _, _, ok := dev.next(); !ok {
				t.Fatal("device found no chain")
			}
		}
		// Complete in reverse order.
		for i := len(ids) - 1; i >= 0; i-- {
			dev.complete(ids[i], uint32(10*i))
		}
		for i := len(ids) - 1; i >= 0; i-- {
			id, n, ok, err := q.Pop()
			if !ok || err != nil || id != ids[i] || n != uint32(10*i) {
				t.Fatalf("lap %d: Pop = %d %d %v %v, want id %d len %d", lap, id, n, ok, err, ids[i], 10*i)
			}
		}
		checkPackedAccounting(t, q)
		if q.Free() != 8 {
			t.Fatalf("lap %d: %d slots free", lap, q.Free())
		}
	}
	// Ids come from the free-id list, not from positions: after five laps
	// of eight slots and 6-slot batches, the device position is 30 % 8.
	if dev.usedPos != 30%8 || q.usedPos != 30%8 {
		t.Errorf("used positions: device %d driver %d, want %d", dev.usedPos, q.usedPos, 30%8)
	}
}

// The spec (§2.8.21.1) has the driver write a chain's head flags after the
// rest, and lets it hide a whole batch behind the first head; Add's chains
// become visible at Kick, never before.
func TestPackedHeadFlagsAreWrittenLastAndPublishedByKick(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 8})
	a, err := q.Add([]Buffer{{Addr: 0x1000, Len: 10}, {Addr: 0x2000, Len: 20}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Add([]Buffer{{Addr: 0x3000, Len: 30}})
	if err != nil {
		t.Fatal(err)
	}
	if dev.pending() {
		t.Fatal("the first chain is available before Kick")
	}
	// The second descriptor of the first chain is written and flagged.
	if f := binary.LittleEndian.Uint16(dev.ring[16+14:]); !isAvail(f, true) || f&descFNext != 0 {
		t.Fatalf("second descriptor flags %#x", f)
	}
	if id, f := dev.slotWord(0); f != 0 || id != 0 {
		t.Fatalf("head slot holds id %d flags %#x before Kick", id, f)
	}
	q.Kick()
	if id, _, _, ok := dev.next(); !ok || id != a {
		t.Fatalf("after Kick: id %d ok %v, want %d", id, ok, a)
	}
	if id, _, _, ok := dev.next(); !ok || id != b {
		t.Fatalf("after Kick: id %d ok %v, want %d", id, ok, b)
	}
}

func TestPackedKickFollowsDeviceEventSuppression(t *testing.T) {
	tests := []struct {
		name     string
		eventIdx bool
		pre      int // slots added and kicked before (each chain one slot)
		batch    int // slots added before the kick under test
		offWrap  func(pos int, wrap bool) uint16
		flags    uint16
		want     bool
	}{
		{"enable notifies", false, 0, 1, nil, eventFlagEnable, true},
		{"disable suppresses", false, 0, 1, nil, eventFlagDisable, false},
		{"desc without event_idx notifies", false, 0, 1, func(int, bool) uint16 { return 5 }, eventFlagDesc, true},
		{"desc at the first slot of the batch", true, 2, 3, func(int, bool) uint16 { return 2 | eventWrapBit }, eventFlagDesc, true},
		{"desc at the last slot of the batch", true, 2, 3, func(int, bool) uint16 { return 4 | eventWrapBit }, eventFlagDesc, true},
		{"desc past the batch", true, 2, 3, func(int, bool) uint16 { return 5 | eventWrapBit }, eventFlagDesc, false},
		{"desc before the batch", true, 2, 3, func(int, bool) uint16 { return 1 | eventWrapBit }, eventFlagDesc, false},
		{"desc in a batch across the wrap, before it", true, 6, 4, func(int, bool) uint16 { return 7 | eventWrapBit }, eventFlagDesc, true},
		{"desc in a batch across the wrap, after it", true, 6, 4, func(int, bool) uint16 { return 1 }, eventFlagDesc, true},
		{"desc with the wrong wrap counter is a lap away", true, 6, 4, func(int, bool) uint16 { return 1 | eventWrapBit }, eventFlagDesc, false},
		{"desc at the next slot after the batch across the wrap", true, 6, 4, func(int, bool) uint16 { return 2 }, eventFlagDesc, false},
		{"disable with event_idx suppresses", true, 0, 2, nil, eventFlagDisable, false},
		{"reserved flags value notifies", true, 0, 1, func(int, bool) uint16 { return 0 }, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newPackedQueue(t, Options{Size: 8, EventIdx: tt.eventIdx})
			buf := []Buffer{{Addr: 0x1000, Len: 1}}
			for range tt.pre {
				id, err := q.Add(buf)
				if err != nil {
					t.Fatal(err)
				}
				q.Kick()
				dev.next()
				dev.complete(id, 0)
				q.Pop()
			}
			for range tt.batch {
				if _, err := q.Add(buf); err != nil {
					t.Fatal(err)
				}
			}
			var ow uint16
			if tt.offWrap != nil {
				ow = tt.offWrap(dev.availPos, dev.availWrap)
			}
			dev.setDevEvent(ow, tt.flags)
			if got := q.Kick(); got != tt.want {
				t.Errorf("Kick() = %v, want %v", got, tt.want)
			}
			if q.Kick() {
				t.Error("a Kick with nothing new asked to notify")
			}
		})
	}
}

func TestPackedInterruptSuppression(t *testing.T) {
	for _, eventIdx := range []bool{false, true} {
		t.Run(fmt.Sprintf("event_idx=%v", eventIdx), func(t *testing.T) {
			q, dev, _ := newPackedQueue(t, Options{Size: 4, EventIdx: eventIdx})
			buf := []Buffer{{Addr: 0x1000, Len: 64, Writable: true}}
			// Several laps, so that the wrap bit of off_wrap flips.
			for round := range 10 {
				ow, f := dev.drvEvent()
				if eventIdx {
					want := uint16(q.usedPos)
					if q.usedWrap {
						want |= eventWrapBit
					}
					if f != eventFlagDesc || ow != want {
						t.Fatalf("round %d: armed driver area off_wrap %#x flags %d, want %#x desc", round, ow, f, want)
					}
				} else if f != eventFlagEnable {
					t.Fatalf("round %d: driver flags %d, want enable", round, f)
				}
				id, _ := q.Add(buf)
				q.Kick()
				dev.next()
				old := dev.usedTotal
				dev.complete(id, 1)
				if !dev.wantsInterrupt(old, dev.usedTotal) {
					t.Fatalf("round %d: the device would not interrupt for the first completion", round)
				}
				q.DisableInterrupts()
				if _, f := dev.drvEvent(); f != eventFlagDisable {
					t.Fatalf("round %d: disabled, driver flags %d", round, f)
				}
				if dev.wantsInterrupt(old, dev.usedTotal) {
					t.Fatalf("round %d: the device would interrupt while disabled", round)
				}
				// A completion arrives between the drain and re-enabling.
				if !q.EnableInterrupts() {
					t.Fatalf("round %d: EnableInterrupts missed a used descriptor", round)
				}
				if _, _, ok, err := q.Pop(); !ok || err != nil {
					t.Fatalf("round %d: Pop %v %v", round, ok, err)
				}
				if q.EnableInterrupts() {
					t.Fatalf("round %d: EnableInterrupts pending with nothing used", round)
				}
			}
		})
	}
}

// TestPackedHostileUsedDescriptorsAreCountedNeverTrusted writes one lie per
// case at the slot where the driver expects the next used descriptor.
func TestPackedHostileUsedDescriptorsAreCountedNeverTrusted(t *testing.T) {
	type setup struct {
		q   *Packed
		dev *packedDevice
		ids []uint16 // in flight, taken by the device
	}
	tests := []struct {
		name    string
		lie     func(s setup)
		wantErr error
		stat    func(Stats) uint64
		freed   int // chains freed by the lie
	}{
		{"id out of range", func(s setup) { s.dev.completeAs(8, 0, 1) }, ErrBadID, func(s Stats) uint64 { return s.BadID }, 0},
		{"id 65535", func(s setup) { s.dev.completeAs(0xffff, 0, 1) }, ErrBadID, func(s Stats) uint64 { return s.BadID }, 0},
		{"id never posted", func(s setup) { s.dev.completeAs(5, 0, 1) }, ErrNotInFlight, func(s Stats) uint64 { return s.NotInFlight }, 0},
		{"length past the buffer", func(s setup) { s.dev.complete(s.ids[0], 101) }, ErrBadLength, func(s Stats) uint64 { return s.BadLength }, 1},
		{"length 2^32-1", func(s setup) { s.dev.complete(s.ids[0], 0xffffffff) }, ErrBadLength, func(s Stats) uint64 { return s.BadLength }, 1},
		{"used flags of the previous lap", func(s setup) {
			s.dev.putUsed(0, s.ids[0], 1, usedFlags(false)|descFWrite)
		}, ErrBadWrap, func(s Stats) uint64 { return s.BadWrap }, 0},
		{"AVAIL and USED inverted", func(s setup) {
			s.dev.putUsed(0, s.ids[0], 1, availFlags(false)|descFWrite)
		}, ErrBadWrap, func(s Stats) uint64 { return s.BadWrap }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newPackedQueue(t, Options{Size: 8})
			var ids []uint16
			for range 3 {
				id, err := q.Add([]Buffer{{Addr: 0x1000, Len: 100, Writable: true}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			q.Kick()
			for range ids {
				dev.next()
			}
			tt.lie(setup{q, dev, ids})
			id, n, ok, err := q.Pop()
			var de *DeviceError
			if !ok || !errors.Is(err, tt.wantErr) || !errors.As(err, &de) || n != 0 {
				t.Fatalf("Pop = %d %d %v %v, want a *DeviceError %v", id, n, ok, err, tt.wantErr)
			}
			if got := tt.stat(q.Stats()); got != 1 || q.Stats().DeviceErrors() != 1 {
				t.Errorf("counter %d, device errors %d, want 1 and 1", got, q.Stats().DeviceErrors())
			}
			if q.InFlight() != 3-tt.freed {
				t.Errorf("%d chains in flight, want %d", q.InFlight(), 3-tt.freed)
			}
			checkPackedAccounting(t, q)
			// Nothing more is reported, and every chain comes back after
			// a reset.
			for range 4 {
				if _, _, ok, err := q.Pop(); ok && err == nil {
					t.Fatal("Pop returned a chain the device never completed")
				}
			}
			for {
				if _, ok := q.DetachUnused(); !ok {
					break
				}
			}
			if q.InFlight() != 0 || q.Free() != 8 {
				t.Fatalf("after detaching: InFlight %d Free %d", q.InFlight(), q.Free())
			}
			checkPackedAccounting(t, q)
			if err := q.Reset(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPackedReusedIdIsRefusedOnce(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 8})
	a, _ := q.Add([]Buffer{{Addr: 0x1000, Len: 100, Writable: true}})
	b, _ := q.Add([]Buffer{{Addr: 0x2000, Len: 100, Writable: true}})
	q.Kick()
	dev.next()
	dev.next()
	dev.complete(a, 1)
	dev.completeAs(a, 1, 1) // a again, where b's completion belongs
	if id, _, ok, err := q.Pop(); !ok || err != nil || id != a {
		t.Fatalf("first completion: %d %v %v", id, ok, err)
	}
	if _, _, ok, err := q.Pop(); !ok || !errors.Is(err, ErrNotInFlight) {
		t.Fatalf("duplicate completion: ok %v err %v, want ErrNotInFlight", ok, err)
	}
	if q.InFlight() != 1 {
		t.Fatalf("InFlight %d, want b still in flight", q.InFlight())
	}
	_ = b
	checkPackedAccounting(t, q)
}

// QEMU writes used descriptors without VIRTQ_DESC_F_WRITE, whatever the
// chain: the length counts (and is checked) with or without the flag.
func TestPackedLengthCountsWithOrWithoutTheWriteFlag(t *testing.T) {
	for _, tt := range []struct {
		name    string
		flags   uint16
		length  uint32
		want    uint32
		wantErr error
	}{
		{"with WRITE", descFWrite, 60, 60, nil},
		{"without WRITE, as QEMU writes it", 0, 60, 60, nil},
		{"without WRITE, past the buffer", 0, 65, 0, ErrBadLength},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newPackedQueue(t, Options{Size: 4})
			id, _ := q.Add([]Buffer{{Addr: 0x1000, Len: 64, Writable: true}})
			q.Kick()
			dev.next()
			dev.putUsed(0, id, tt.length, usedFlags(true)|tt.flags)
			got, n, ok, err := q.Pop()
			if !ok || got != id || n != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pop = %d %d %v %v, want %d written %d err %v", got, n, ok, err, id, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPackedFullRingIsBackpressureAndLosesNothing(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 4})
	two := []Buffer{{Addr: 0x1000, Len: 1}, {Addr: 0x2000, Len: 1}}
	a, _ := q.Add(two)
	b, _ := q.Add(two)
	if _, err := q.Add(two[:1]); !errors.Is(err, ErrFull) {
		t.Fatalf("Add on a full ring: %v", err)
	}
	q.Kick()
	dev.next()
	dev.next()
	dev.complete(b, 0)
	if id, _, ok, err := q.Pop(); !ok || err != nil || id != b {
		t.Fatalf("Pop %d %v %v", id, ok, err)
	}
	// b's two slots are free: a three-slot chain is not, a two-slot one is.
	if _, err := q.Add(append(two, two[0])); !errors.Is(err, ErrFull) {
		t.Fatalf("three-slot chain with two free: %v", err)
	}
	c, err := q.Add(two)
	if err != nil {
		t.Fatal(err)
	}
	q.Kick()
	if id, bufs, _, ok := dev.next(); !ok || id != c || len(bufs) != 2 {
		t.Fatalf("device took %d %v %v", id, bufs, ok)
	}
	dev.complete(a, 0)
	dev.complete(c, 0)
	for _, want := range []uint16{a, c} {
		if id, _, ok, err := q.Pop(); !ok || err != nil || id != want {
			t.Fatalf("Pop %d %v %v, want %d", id, ok, err, want)
		}
	}
	if q.Free() != 4 || q.Stats().Full != 2 {
		t.Fatalf("Free %d Full %d", q.Free(), q.Stats().Full)
	}
	checkPackedAccounting(t, q)
}

func TestPackedAddRejectsMalformedChains(t *testing.T) {
	q, _, _ := newPackedQueue(t, Options{Size: 4})
	for _, c := range []struct {
		bufs []Buffer
		want error
	}{
		{nil, ErrNoBuffers},
		{make([]Buffer, 5), ErrChainTooLong},
		{[]Buffer{{Addr: 1, Len: 0}}, ErrZeroLength},
		{[]Buffer{{Addr: 1, Len: 1, Writable: true}, {Addr: 2, Len: 1}}, ErrBufferOrder},
	} {
		if _, err := q.Add(c.bufs); !errors.Is(err, c.want) {
			t.Errorf("Add(%v) = %v, want %v", c.bufs, err, c.want)
		}
	}
	checkPackedAccounting(t, q)
}

func TestPackedDetachUnusedRecoversEveryChainAndResetReuses(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 8, Indirect: true, EventIdx: true})
	got := map[uint16]bool{}
	for range 3 {
		id, err := q.Add([]Buffer{{Addr: 0x1000, Len: 1}, {Addr: 0x2000, Len: 2, Writable: true}})
		if err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	q.Kick()
	if err := q.Reset(); err == nil {
		t.Fatal("Reset with chains in flight succeeded")
	}
	for {
		id, ok := q.DetachUnused()
		if !ok {
			break
		}
		if !got[id] {
			t.Fatalf("DetachUnused returned %d, not in flight", id)
		}
		delete(got, id)
	}
	if len(got) != 0 || q.Stats().Detached != 3 {
		t.Fatalf("left %v, detached %d", got, q.Stats().Detached)
	}
	if err := q.Reset(); err != nil {
		t.Fatal(err)
	}
	// The device is reset too: a fresh device view starts at slot 0.
	dev = newPackedDevice(t, dev.mem, q)
	id, err := q.Add([]Buffer{{Addr: 0x3000, Len: 3, Writable: true}})
	if err != nil {
		t.Fatal(err)
	}
	q.Kick()
	if did, _, _, ok := dev.next(); !ok || did != id {
		t.Fatalf("after Reset the device took %d %v", did, ok)
	}
	dev.complete(id, 3)
	if pid, n, ok, err := q.Pop(); !ok || err != nil || pid != id || n != 3 {
		t.Fatalf("Pop after Reset: %d %d %v %v", pid, n, ok, err)
	}
}

func TestPackedRoundTripDoesNotAllocate(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 256, EventIdx: true, Indirect: true})
	bufs := []Buffer{{Addr: 0x1000, Len: 12}, {Addr: 0x2000, Len: 1500}}
	allocs := testing.AllocsPerRun(1000, func() {
		id, err := q.Add(bufs)
		if err != nil {
			t.Fatal(err)
		}
		q.Kick()
		dev.putUsed(dev.usedPos, id, 0, usedFlags(dev.usedWrap))
		dev.usedPos++
		if dev.usedPos == dev.size {
			dev.usedPos, dev.usedWrap = 0, !dev.usedWrap
		}
		if _, _, ok, err := q.Pop(); !ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip", allocs)
	}
}

// With EVENT_IDX and interrupts on, each Pop moves off_wrap to the next
// used descriptor: otherwise it would name a slot already consumed, and
// the device would not interrupt until the ring came round again.
func TestPackedPopKeepsTheInterruptArmedAtTheNextUsedDescriptor(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 4, EventIdx: true})
	buf := []Buffer{{Addr: 0x1000, Len: 64, Writable: true}}
	for round := range 6 { // laps, so that the wrap bit of off_wrap flips
		a, _ := q.Add(buf)
		b, _ := q.Add(buf)
		q.Kick()
		dev.next()
		dev.next()
		old := dev.usedTotal
		dev.complete(a, 1)
		if !dev.wantsInterrupt(old, dev.usedTotal) {
			t.Fatalf("round %d: no interrupt for the first completion", round)
		}
		if id, _, ok, err := q.Pop(); !ok || err != nil || id != a {
			t.Fatalf("round %d: Pop %d %v %v", round, id, ok, err)
		}
		old = dev.usedTotal
		dev.complete(b, 1)
		if !dev.wantsInterrupt(old, dev.usedTotal) {
			t.Fatalf("round %d: no interrupt for the completion after a Pop", round)
		}
		if id, _, ok, err := q.Pop(); !ok || err != nil || id != b {
			t.Fatalf("round %d: Pop %d %v %v", round, id, ok, err)
		}
	}
}

// A chain added but not yet published by Kick is not the device's: a used
// descriptor naming it is refused (freeing it would let Kick hand the
// device buffers the caller took back), and the chain stays in flight
// until the device is reset.
func TestPackedCompletionBeforeKickIsRefused(t *testing.T) {
	q, dev, _ := newPackedQueue(t, Options{Size: 4})
	buf := []Buffer{{Addr: 0x1000, Len: 64, Writable: true}}
	a, _ := q.Add(buf)
	q.Kick()
	dev.next()
	b, _ := q.Add(buf) // not kicked
	dev.completeAs(b, 1, 1)
	if _, _, ok, err := q.Pop(); !ok || !errors.Is(err, ErrNotInFlight) {
		t.Fatalf("completion of an unpublished chain: ok %v err %v, want ErrNotInFlight", ok, err)
	}
	if q.InFlight() != 2 {
		t.Fatalf("InFlight %d, want both chains still in flight", q.InFlight())
	}
	checkPackedAccounting(t, q)
	q.Kick()
	checkPackedAccounting(t, q)
	got := map[uint16]bool{}
	for {
		id, ok := q.DetachUnused()
		if !ok {
			break
		}
		got[id] = true
	}
	if len(got) != 2 || !got[a] || !got[b] {
		t.Fatalf("detached %v, want %d and %d", got, a, b)
	}
}
