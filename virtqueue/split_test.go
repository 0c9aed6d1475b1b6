package virtqueue

import (
	"errors"
	"fmt"
	"testing"
)

func TestNewSplitValidatesSizeAndLaysOutRings(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"size 0 is refused", Options{Size: 0}, true},
		{"size 3 is not a power of two", Options{Size: 3}, true},
		{"size 65536 is beyond the split ring maximum", Options{Size: 65536}, true},
		{"negative size is refused", Options{Size: -4}, true},
		{"indirect table longer than the queue is refused", Options{Size: 8, Indirect: true, IndirectMax: 9}, true},
		{"size 1 modern", Options{Size: 1}, false},
		{"size 1 legacy", Options{Size: 1, Legacy: true}, false},
		{"size 256 modern with every feature", Options{Size: 256, EventIdx: true, Indirect: true}, false},
		{"size 256 legacy", Options{Size: 256, Legacy: true}, false},
		{"size 32768 modern", Options{Size: 32768, EventIdx: true}, false},
		{"size 32768 legacy", Options{Size: 32768, Legacy: true, Indirect: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := &HeapDMA{}
			q, err := NewSplit(mem, tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewSplit(%+v) succeeded", tt.opts)
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
			desc, avail, used := q.Addresses()
			if desc%16 != 0 || avail%2 != 0 || used%4 != 0 {
				t.Errorf("misaligned rings: desc %#x avail %#x used %#x", desc, avail, used)
			}
			l := layoutFor(n)
			if tt.opts.Legacy {
				if desc%4096 != 0 || avail != desc+uint64(16*n) || used != desc+uint64(alignUp(18*n+6, 4096)) {
					t.Errorf("legacy layout: desc %#x avail %#x used %#x", desc, avail, used)
				}
				// One allocation: the whole area resolves as one range.
				if _, err := mem.Slice(desc, l.legacyBytes); err != nil {
					t.Errorf("legacy area not contiguous: %v", err)
				}
			}
			for _, r := range []struct {
				phys uint64
				n    int
			}{{desc, l.descBytes}, {avail, l.availBytes}, {used, l.usedBytes}} {
				if _, err := mem.Slice(r.phys, r.n); err != nil {
					t.Errorf("ring at %#x: %v", r.phys, err)
				}
			}
		})
	}
}

func TestNeedEventFollowsVringNeedEventAcrossWrap(t *testing.T) {
	tests := []struct {
		name            string
		event, new, old uint16
		want            bool
	}{
		{"event just passed", 5, 6, 5, true},
		{"event not reached", 6, 6, 5, false},
		{"event inside the batch", 7, 10, 5, true},
		{"event at the batch start", 5, 10, 5, true},
		{"event behind the batch", 4, 10, 5, false},
		{"event ahead of the batch", 10, 10, 5, false},
		{"nothing moved", 5, 5, 5, false},
		{"batch wraps, event before the wrap", 65535, 2, 65534, true},
		{"batch wraps, event after the wrap", 1, 2, 65534, true},
		{"batch wraps, event at new", 2, 2, 65534, false},
		{"batch wraps, event far behind", 65000, 2, 65534, false},
		{"parked half the space away", 5 + 0x8000, 5 + 0x7fff, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needEvent(tt.event, tt.new, tt.old); got != tt.want {
				t.Errorf("needEvent(event %d, new %d, old %d) = %v, want %v", tt.event, tt.new, tt.old, got, tt.want)
			}
		})
	}
}

func TestChainsReachTheDeviceAndComeBack(t *testing.T) {
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
	for _, opts := range []Options{
		{Size: 8},
		{Size: 8, Legacy: true},
		{Size: 8, Indirect: true},
		{Size: 8, Indirect: true, Legacy: true, EventIdx: true},
	} {
		for _, c := range chains {
			t.Run(fmt.Sprintf("%s/legacy=%v,indirect=%v", c.name, opts.Legacy, opts.Indirect), func(t *testing.T) {
				q, dev, _ := newQueue(t, opts)
				head, err := q.Add(c.bufs)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, ok := dev.next(); ok {
					t.Fatal("device saw the chain before Kick")
				}
				q.Kick()
				got, chain, ok := dev.next()
				if !ok || got != head {
					t.Fatalf("device got head %d ok %v, want %d", got, ok, head)
				}
				if fmt.Sprint(chain) != fmt.Sprint(c.bufs) {
					t.Fatalf("device got chain %v, want %v", chain, c.bufs)
				}
				wantFree := q.Size() - len(c.bufs)
				if opts.Indirect && len(c.bufs) > 1 {
					wantFree = q.Size() - 1
				}
				if q.Free() != wantFree || q.InFlight() != 1 {
					t.Fatalf("Free %d InFlight %d, want %d and 1", q.Free(), q.InFlight(), wantFree)
				}
				var writable uint32
				for _, b := range c.bufs {
					if b.Writable {
						writable += b.Len
					}
				}
				dev.complete(uint32(head), writable)
				h, n, ok, err := q.Pop()
				if !ok || err != nil || h != head || n != writable {
					t.Fatalf("Pop = %d %d %v %v, want %d %d true nil", h, n, ok, err, head, writable)
				}
				if _, _, ok, _ := q.Pop(); ok {
					t.Fatal("second Pop found an entry")
				}
				if q.Free() != q.Size() || q.InFlight() != 0 {
					t.Fatalf("after Pop: Free %d InFlight %d", q.Free(), q.InFlight())
				}
			})
		}
	}
}

func TestSixteenBitIndicesWrapAround(t *testing.T) {
	for _, opts := range []Options{
		{Size: 1},
		{Size: 1, EventIdx: true},
		{Size: 2, Legacy: true},
		{Size: 16, EventIdx: true, Indirect: true},
		{Size: 256},
	} {
		t.Run(fmt.Sprintf("size %d event_idx=%v", opts.Size, opts.EventIdx), func(t *testing.T) {
			q, dev, _ := newQueue(t, opts)
			rounds := 70000 // past 65536 on both indices
			if testing.Short() {
				rounds = 66000
			}
			bufs := []Buffer{{Addr: 0x1000, Len: 64}, {Addr: 0x2000, Len: 2048, Writable: true}}
			if opts.Size == 1 {
				bufs = bufs[1:]
			}
			batch := max(1, opts.Size/len(bufs))
			for done := 0; done < rounds; {
				heads := make(map[uint16]bool)
				for range batch {
					h, err := q.Add(bufs)
					if err != nil {
						t.Fatalf("round %d: Add: %v", done, err)
					}
					heads[h] = true
				}
				q.Kick()
				for i := 0; ; i++ {
					h, _, ok := dev.next()
					if !ok {
						break
					}
					dev.complete(uint32(h), uint32(i))
				}
				for range batch {
					h, n, ok, err := q.Pop()
					if !ok || err != nil || !heads[h] || n > 2048 {
						t.Fatalf("round %d: Pop = %d %d %v %v", done, h, n, ok, err)
					}
					delete(heads, h)
					done++
				}
				if q.Free() != q.Size() {
					t.Fatalf("round %d: Free %d", done, q.Free())
				}
			}
			if s := q.Stats(); s.DeviceErrors() != 0 || s.Popped != s.Added {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// advance moves a queue's avail and used indices to start by round trips.
func advance(t *testing.T, q *Split, dev *testDevice, start uint16) {
	t.Helper()
	for q.availIdx != start {
		h, err := q.Add([]Buffer{{Addr: 1, Len: 1}})
		if err != nil {
			t.Fatal(err)
		}
		q.Kick()
		dev.next()
		dev.complete(uint32(h), 0)
		if _, _, _, err := q.Pop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKickAsksForNotificationWhenAvailEventIsCrossed(t *testing.T) {
	tests := []struct {
		name       string
		start      uint16 // avail.idx before the batch
		add        int    // chains added before Kick
		availEvent uint16 // what the device asked for
		want       bool
	}{
		{"device waits for the first entry", 0, 1, 0, true},
		{"device waits for a later entry", 0, 1, 1, false},
		{"event inside a batch", 100, 4, 102, true},
		{"event at the end of a batch", 100, 4, 103, true},
		{"event just past a batch", 100, 4, 104, false},
		{"event already passed before the batch", 100, 4, 99, false},
		{"batch crosses the wrap, event before it", 65534, 4, 65535, true},
		{"batch crosses the wrap, event after it", 65534, 4, 1, true},
		{"batch crosses the wrap, event past it", 65534, 4, 2, false},
		{"batch ends on the wrap", 65532, 4, 65535, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newQueue(t, Options{Size: 8, EventIdx: true})
			advance(t, q, dev, tt.start)
			for range tt.add {
				if _, err := q.Add([]Buffer{{Addr: 1, Len: 1}}); err != nil {
					t.Fatal(err)
				}
			}
			dev.setAvailEvent(tt.availEvent)
			before := q.Stats()
			if got := q.Kick(); got != tt.want {
				t.Fatalf("Kick() = %v, want %v", got, tt.want)
			}
			after := q.Stats()
			if tt.want && after.Notifies != before.Notifies+1 || !tt.want && after.Suppressed != before.Suppressed+1 {
				t.Fatalf("stats before %+v after %+v", before, after)
			}
			if _, idx := dev.availHdr(); idx != tt.start+uint16(tt.add) {
				t.Fatalf("avail.idx %d, want %d", idx, tt.start+uint16(tt.add))
			}
			if q.Kick() {
				t.Fatal("a second Kick with nothing new asked for a notification")
			}
		})
	}
}

func TestKickHonoursNoNotifyWithoutEventIdx(t *testing.T) {
	tests := []struct {
		name     string
		noNotify bool
		add      bool
		want     bool
	}{
		{"device wants notifications", false, true, true},
		{"device suppressed notifications", true, true, false},
		{"nothing added, nothing to tell", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newQueue(t, Options{Size: 4})
			dev.setNoNotify(tt.noNotify)
			if tt.add {
				if _, err := q.Add([]Buffer{{Addr: 1, Len: 1}}); err != nil {
					t.Fatal(err)
				}
			}
			if got := q.Kick(); got != tt.want {
				t.Fatalf("Kick() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFullRingIsBackpressureAndLosesNothing(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		chain     int // buffers per chain
		fits      int // chains that fit
		freeAfter int // descriptors left when full
	}{
		{"single buffers fill every descriptor", Options{Size: 8}, 1, 8, 0},
		{"three-buffer chains leave two descriptors", Options{Size: 8}, 3, 2, 2},
		{"indirect chains take one descriptor each", Options{Size: 8, Indirect: true}, 3, 8, 0},
		{"chains longer than IndirectMax go direct", Options{Size: 8, Indirect: true, IndirectMax: 2}, 3, 2, 2},
		{"size 1 holds one chain", Options{Size: 1, Indirect: true}, 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newQueue(t, tt.opts)
			bufs := make([]Buffer, tt.chain)
			for i := range bufs {
				bufs[i] = Buffer{Addr: uint64(0x1000 * (i + 1)), Len: 100, Writable: i == tt.chain-1}
			}
			heads := map[uint16]bool{}
			for i := range tt.fits {
				h, err := q.Add(bufs)
				if err != nil {
					t.Fatalf("chain %d: %v", i, err)
				}
				if heads[h] {
					t.Fatalf("head %d given twice", h)
				}
				heads[h] = true
			}
			if q.Free() != tt.freeAfter {
				t.Fatalf("Free %d, want %d", q.Free(), tt.freeAfter)
			}
			if _, err := q.Add(bufs); !errors.Is(err, ErrFull) {
				t.Fatalf("Add on a full ring: %v, want ErrFull", err)
			}
			if q.Stats().Full != 1 || q.InFlight() != tt.fits {
				t.Fatalf("Full %d InFlight %d", q.Stats().Full, q.InFlight())
			}
			checkAccounting(t, q)
			// Everything posted before ErrFull reaches the device.
			q.Kick()
			seen := 0
			for {
				h, _, ok := dev.next()
				if !ok {
					break
				}
				if !heads[h] {
					t.Fatalf("device saw head %d never returned by Add", h)
				}
				seen++
				dev.complete(uint32(h), 100)
			}
			if seen != tt.fits {
				t.Fatalf("device saw %d chains, want %d", seen, tt.fits)
			}
			// One completion makes room again.
			if _, _, ok, err := q.Pop(); !ok || err != nil {
				t.Fatalf("Pop: %v %v", ok, err)
			}
			if _, err := q.Add(bufs); err != nil {
				t.Fatalf("Add after a completion: %v", err)
			}
			checkAccounting(t, q)
		})
	}
}

func TestAddRejectsMalformedChains(t *testing.T) {
	tests := []struct {
		name string
		bufs []Buffer
		want error
	}{
		{"empty chain", nil, ErrNoBuffers},
		{"zero-length buffer", []Buffer{{Addr: 1, Len: 0}}, ErrZeroLength},
		{"readable after writable", []Buffer{{Addr: 1, Len: 1, Writable: true}, {Addr: 2, Len: 1}}, ErrBufferOrder},
		{"longer than the queue", make([]Buffer, 5), ErrChainTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _, _ := newQueue(t, Options{Size: 4, Indirect: true})
			if _, err := q.Add(tt.bufs); !errors.Is(err, tt.want) {
				t.Fatalf("Add: %v, want %v", err, tt.want)
			}
			if q.Free() != 4 || q.InFlight() != 0 || q.Stats().Added != 0 {
				t.Fatal("a refused chain consumed descriptors")
			}
		})
	}
}

func TestIndirectTablesHoldTheChain(t *testing.T) {
	q, dev, mem := newQueue(t, Options{Size: 4, Indirect: true, IndirectMax: 4})
	bufs := []Buffer{{Addr: 0x1000, Len: 12}, {Addr: 0x2000, Len: 100}, {Addr: 0x3000, Len: 200, Writable: true}}
	head, err := q.Add(bufs)
	if err != nil {
		t.Fatal(err)
	}
	q.Kick()
	// The ring descriptor is an INDIRECT one pointing at 3 entries.
	d := dev.desc[int(head)*descSize:]
	addr, length, flags := le64(d), le32(d[8:]), le16(d[12:])
	if flags != descFIndirect || length != 3*descSize {
		t.Fatalf("head descriptor flags %#x len %d", flags, length)
	}
	table, err := mem.Slice(addr, int(length))
	if err != nil {
		t.Fatalf("indirect table not in DMA memory: %v", err)
	}
	wantFlags := []uint16{descFNext, descFNext, descFWrite}
	for i, b := range bufs {
		e := table[i*descSize:]
		if le64(e) != b.Addr || le32(e[8:]) != b.Len || le16(e[12:]) != wantFlags[i] {
			t.Errorf("entry %d: %#x %d %#x", i, le64(e), le32(e[8:]), le16(e[12:]))
		}
		if i < 2 && le16(e[14:]) != uint16(i+1) {
			t.Errorf("entry %d next %d", i, le16(e[14:]))
		}
	}
	if _, chain, _ := dev.next(); fmt.Sprint(chain) != fmt.Sprint(bufs) {
		t.Fatalf("device followed %v", chain)
	}
	if q.Stats().AddedIndirect != 1 {
		t.Fatalf("stats %+v", q.Stats())
	}
	// A single-buffer chain never needs a table.
	h2, _ := q.Add(bufs[:1])
	if le16(dev.desc[int(h2)*descSize+12:])&descFIndirect != 0 {
		t.Fatal("single buffer went indirect")
	}
}

func TestHostileUsedEntriesAreCountedNeverTrusted(t *testing.T) {
	const size = 8
	type entry struct{ id, len uint32 }
	tests := []struct {
		name     string
		entries  func(heads []uint16) []entry // used entries the device writes
		usedIdx  func(dev *testDevice) uint16 // optional: publish this instead
		want     error                        // from the first Pop
		validHd  bool                         // the first Pop's head is a freed chain
		stat     func(Stats) uint64
		freeDiff int // descriptors freed by the first Pop
	}{
		{
			name:    "id equal to the size",
			entries: func([]uint16) []entry { return []entry{{size, 0}} },
			want:    ErrBadID, stat: func(s Stats) uint64 { return s.BadID },
		},
		{
			name:    "id far out of range",
			entries: func([]uint16) []entry { return []entry{{0xffffffff, 0}} },
			want:    ErrBadID, stat: func(s Stats) uint64 { return s.BadID },
		},
		{
			name:    "id never posted",
			entries: func(h []uint16) []entry { return []entry{{7, 0}} },
			want:    ErrNotInFlight, stat: func(s Stats) uint64 { return s.NotInFlight },
		},
		{
			name:    "id of a non-head descriptor",
			entries: func(h []uint16) []entry { return []entry{{uint32(h[0]) + 1, 0}} },
			want:    ErrNotInFlight, stat: func(s Stats) uint64 { return s.NotInFlight },
		},
		{
			name:    "length past the writable bytes",
			entries: func(h []uint16) []entry { return []entry{{uint32(h[0]), 101}} },
			want:    ErrBadLength, validHd: true, freeDiff: 2,
			stat: func(s Stats) uint64 { return s.BadLength },
		},
		{
			name:    "huge length",
			entries: func(h []uint16) []entry { return []entry{{uint32(h[1]), 0xffffffff}} },
			want:    ErrBadLength, validHd: true, freeDiff: 2,
			stat: func(s Stats) uint64 { return s.BadLength },
		},
		{
			name:    "used.idx jumps past the queue size",
			entries: func([]uint16) []entry { return nil },
			usedIdx: func(*testDevice) uint16 { return size + 1 },
			want:    ErrBadUsedIdx, stat: func(s Stats) uint64 { return s.BadUsedIdx },
		},
		{
			name:    "used.idx goes backwards",
			entries: func([]uint16) []entry { return nil },
			usedIdx: func(*testDevice) uint16 { return 0xffff },
			want:    ErrBadUsedIdx, stat: func(s Stats) uint64 { return s.BadUsedIdx },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newQueue(t, Options{Size: size})
			// Two chains in flight: 2 descriptors each, 100 writable bytes.
			var heads []uint16
			for range 2 {
				h, err := q.Add([]Buffer{{Addr: 0x1000, Len: 10}, {Addr: 0x2000, Len: 100, Writable: true}})
				if err != nil {
					t.Fatal(err)
				}
				heads = append(heads, h)
			}
			q.Kick()
			for _, e := range tt.entries(heads) {
				dev.complete(e.id, e.len)
			}
			if tt.usedIdx != nil {
				dev.setUsedIdx(tt.usedIdx(dev))
			}
			free := q.Free()
			h, n, ok, err := q.Pop()
			if !ok || !errors.Is(err, tt.want) {
				t.Fatalf("Pop = %d %d %v %v, want error %v", h, n, ok, err, tt.want)
			}
			var de *DeviceError
			if !errors.As(err, &de) || de.Error() == "" {
				t.Fatalf("error %T is not a *DeviceError", err)
			}
			if n != 0 {
				t.Errorf("written %d reported for a violation", n)
			}
			if tt.validHd && uint32(h) != de.ID {
				t.Errorf("head %d, want %d", h, de.ID)
			}
			if q.Free()-free != tt.freeDiff {
				t.Errorf("Pop freed %d descriptors, want %d", q.Free()-free, tt.freeDiff)
			}
			if s := q.Stats(); tt.stat(s) != 1 || s.DeviceErrors() != 1 {
				t.Errorf("stats %+v", s)
			}
			checkAccounting(t, q)
			// The driver keeps going: the chains still in flight complete
			// normally once the device behaves.
			if tt.usedIdx != nil {
				dev.rewindUsed(q.lastUsed)
			}
			for _, h := range heads {
				if q.chainDescs[h] != 0 {
					dev.complete(uint32(h), 100)
				}
			}
			for q.InFlight() > 0 {
				if _, _, ok, err := q.Pop(); !ok || err != nil {
					t.Fatalf("recovery Pop: %v %v", ok, err)
				}
			}
			if q.Free() != size {
				t.Fatalf("Free %d after recovery", q.Free())
			}
		})
	}
}

func TestDuplicatedCompletionIsRefusedOnce(t *testing.T) {
	q, dev, _ := newQueue(t, Options{Size: 4, EventIdx: true})
	h, _ := q.Add([]Buffer{{Addr: 1, Len: 8, Writable: true}})
	q.Kick()
	dev.complete(uint32(h), 8)
	dev.complete(uint32(h), 8)
	if got, n, ok, err := q.Pop(); !ok || err != nil || got != h || n != 8 {
		t.Fatalf("first completion: %d %d %v %v", got, n, ok, err)
	}
	if _, _, ok, err := q.Pop(); !ok || !errors.Is(err, ErrNotInFlight) {
		t.Fatalf("duplicate: %v %v, want ErrNotInFlight", ok, err)
	}
	// The head is reusable and a fresh chain on it completes normally.
	h2, _ := q.Add([]Buffer{{Addr: 1, Len: 8, Writable: true}})
	q.Kick()
	dev.complete(uint32(h2), 3)
	if got, n, ok, err := q.Pop(); !ok || err != nil || got != h2 || n != 3 {
		t.Fatalf("fresh chain: %d %d %v %v", got, n, ok, err)
	}
	checkAccounting(t, q)
}

func TestInterruptSuppression(t *testing.T) {
	t.Run("flags: disable sets NO_INTERRUPT without publishing unkicked entries", func(t *testing.T) {
		q, dev, _ := newQueue(t, Options{Size: 4})
		h, _ := q.Add([]Buffer{{Addr: 1, Len: 1}})
		q.Kick()
		q.Add([]Buffer{{Addr: 1, Len: 1}}) // added, not kicked
		q.DisableInterrupts()
		if flags, idx := dev.availHdr(); flags != availFNoInterrupt || idx != 1 {
			t.Fatalf("avail flags %d idx %d, want 1 and 1", flags, idx)
		}
		if q.EnableInterrupts() {
			t.Fatal("pending with nothing used")
		}
		if flags, idx := dev.availHdr(); flags != 0 || idx != 1 {
			t.Fatalf("avail flags %d idx %d, want 0 and 1", flags, idx)
		}
		q.DisableInterrupts()
		dev.complete(uint32(h), 0) // arrives while draining is over
		if !q.EnableInterrupts() {
			t.Fatal("EnableInterrupts missed an entry that arrived while disabled")
		}
		if q.Kick(); q.availFlags != 0 {
			t.Fatal("Kick changed flags")
		}
	})
	t.Run("event index: used_event follows Pop, parks when disabled", func(t *testing.T) {
		q, dev, _ := newQueue(t, Options{Size: 4, EventIdx: true})
		for range 3 {
			q.Add([]Buffer{{Addr: 1, Len: 1}})
		}
		q.Kick()
		if flags, _ := dev.availHdr(); flags != 0 {
			t.Fatalf("avail.flags %d with EVENT_IDX", flags)
		}
		for {
			h, _, ok := dev.next()
			if !ok {
				break
			}
			dev.complete(uint32(h), 0)
		}
		q.Pop()
		if ev := dev.usedEvent(); ev != 1 {
			t.Fatalf("used_event %d after one Pop, want 1", ev)
		}
		q.DisableInterrupts()
		if ev := dev.usedEvent(); ev != 1+0x8000 {
			t.Fatalf("used_event %d when disabled, want parked at %d", ev, 1+0x8000)
		}
		if flags, _ := dev.availHdr(); flags != 0 {
			t.Fatal("DisableInterrupts set avail.flags with EVENT_IDX")
		}
		q.Pop()
		if ev := dev.usedEvent(); ev != 1+0x8000 {
			t.Fatalf("Pop moved used_event to %d while disabled", ev)
		}
		if !q.EnableInterrupts() {
			t.Fatal("one entry still unread, EnableInterrupts said none")
		}
		if ev := dev.usedEvent(); ev != 2 {
			t.Fatalf("used_event %d after enable, want 2", ev)
		}
		q.Pop()
		if q.EnableInterrupts() {
			t.Fatal("pending after draining everything")
		}
		if ev := dev.usedEvent(); ev != 3 {
			t.Fatalf("used_event %d, want 3", ev)
		}
	})
}

func TestDetachUnusedRecoversEveryChainAndResetReuses(t *testing.T) {
	q, dev, _ := newQueue(t, Options{Size: 8, Indirect: true, EventIdx: true})
	posted := map[uint16]bool{}
	for _, n := range []int{1, 3, 2, 1} {
		if _, err := q.Add(nil); err == nil {
			t.Fatal("empty chain accepted")
		}
		bufs := make([]Buffer, n)
		for i := range bufs {
			bufs[i] = Buffer{Addr: 1, Len: 1}
		}
		h, err := q.Add(bufs)
		if err != nil {
			t.Fatal(err)
		}
		posted[h] = true
	}
	q.Kick()
	if err := q.Reset(); err == nil {
		t.Fatal("Reset with chains in flight succeeded")
	}
	for {
		h, ok := q.DetachUnused()
		if !ok {
			break
		}
		if !posted[h] {
			t.Fatalf("detached %d, never posted or detached twice", h)
		}
		delete(posted, h)
	}
	if len(posted) != 0 || q.Free() != 8 || q.InFlight() != 0 {
		t.Fatalf("left %v, Free %d", posted, q.Free())
	}
	if err := q.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, idx := dev.availHdr(); idx != 0 {
		t.Fatal("Reset left avail.idx")
	}
	dev = newTestDevice(t, dev.mem, q)
	h, _ := q.Add([]Buffer{{Addr: 1, Len: 4, Writable: true}})
	q.Kick()
	dev.next()
	dev.complete(uint32(h), 4)
	if got, n, ok, err := q.Pop(); !ok || err != nil || got != h || n != 4 {
		t.Fatalf("after Reset: %d %d %v %v", got, n, ok, err)
	}
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 { return uint32(le16(b)) | uint32(le16(b[2:]))<<16 }
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

func TestLengthOnAReadOnlyChainIsBadLength(t *testing.T) {
	tests := []struct {
		name    string
		written uint32
		want    error
	}{
		{"zero written is the only valid length", 0, nil},
		{"one byte written into read-only buffers", 1, ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, dev, _ := newQueue(t, Options{Size: 2, Indirect: true})
			h, _ := q.Add([]Buffer{{Addr: 1, Len: 12}, {Addr: 2, Len: 1500}})
			q.Kick()
			dev.complete(uint32(h), tt.written)
			got, n, ok, err := q.Pop()
			if !ok || got != h || n != 0 || !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Pop = %d %d %v %v, want head %d, error %v", got, n, ok, err, h, tt.want)
			}
			if q.Free() != 2 {
				t.Fatalf("chain not freed: Free %d", q.Free())
			}
		})
	}
}

func TestRoundTripDoesNotAllocate(t *testing.T) {
	for _, opts := range []Options{{Size: 64}, {Size: 64, EventIdx: true, Indirect: true}} {
		q, dev, _ := newQueue(t, opts)
		bufs := []Buffer{{Addr: 1, Len: 12}, {Addr: 2, Len: 4096, Writable: true}}
		allocs := testing.AllocsPerRun(100, func() {
			h, err := q.Add(bufs)
			if err != nil {
				t.Fatal(err)
			}
			q.Kick()
			dev.complete(uint32(h), 10)
			q.Pop()
			q.DisableInterrupts()
			q.EnableInterrupts()
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per round trip", opts, allocs)
		}
	}
}

func TestEarlyCompletionsCannotOverrunTheAvailRing(t *testing.T) {
	q, dev, _ := newQueue(t, Options{Size: 4})
	// The device completes every chain the moment it is added, before any
	// Kick published it: descriptors come back, the avail ring does not.
	added := 0
	for range 10 {
		h, err := q.Add([]Buffer{{Addr: 1, Len: 1}})
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		added++
		dev.complete(uint32(h), 0)
		if _, _, ok, err := q.Pop(); !ok || err != nil {
			t.Fatalf("Pop: %v %v", ok, err)
		}
		checkAccounting(t, q)
	}
	if added != 4 {
		t.Fatalf("%d chains added before ErrFull, want the ring size 4", added)
	}
	q.Kick()
	if _, err := q.Add([]Buffer{{Addr: 1, Len: 1}}); err != nil {
		t.Fatalf("Add after Kick: %v", err)
	}
}
