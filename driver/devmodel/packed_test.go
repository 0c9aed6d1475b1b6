package devmodel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
)

// testPacked is a hand-driven packed virtqueue: each test writes the
// descriptors the device sees, including wrong ones.
type testPacked struct {
	t        testing.TB
	size     int
	ring     []byte // descriptor ring
	drv, dev []byte // driver and device event suppression areas
	phys     [3]uint64
	pos      int  // next slot the driver writes
	wrap     bool // driver's avail wrap counter
	usedPos  int  // next slot the driver expects a used descriptor at
	usedWrap bool // driver's used wrap counter
}

func newTestPacked(t testing.TB, mem *virtqueue.HeapDMA, size int) *testPacked {
	t.Helper()
	q := &testPacked{t: t, size: size, wrap: true, usedWrap: true}
	var err error
	if q.ring, q.phys[0], err = mem.Alloc(16*size, 16); err != nil {
		t.Fatal(err)
	}
	if q.drv, q.phys[1], err = mem.Alloc(4, 4); err != nil {
		t.Fatal(err)
	}
	if q.dev, q.phys[2], err = mem.Alloc(4, 4); err != nil {
		t.Fatal(err)
	}
	return q
}

// availBits are AVAIL/USED for the driver's wrap counter w.
func availBits(w bool) uint16 {
	if w {
		return pkFlagAvail
	}
	return pkFlagUsed
}

// put writes a chain of bufs with buffer id at the driver's position; the
// head's id and flags go last, with an atomic store. mangle, if set, may
// change each descriptor's id and flags before they are written.
func (q *testPacked) put(id uint16, bufs []testBuf, mangle func(i int, id, flags uint16) (uint16, uint16)) {
	head, headWord := q.pos, uint32(0)
	for i, b := range bufs {
		flags := availBits(q.wrap)
		if b.writable {
			flags |= descFWrite
		}
		if i < len(bufs)-1 {
			flags |= descFNext
		}
		did := id
		if mangle != nil {
			did, flags = mangle(i, did, flags)
		}
		d := q.ring[16*q.pos:]
		binary.LittleEndian.PutUint64(d, b.phys)
		binary.LittleEndian.PutUint32(d[8:], uint32(len(b.b)))
		if i == 0 {
			headWord = uint32(did) | uint32(flags)<<16
		} else {
			binary.LittleEndian.PutUint16(d[12:], did)
			binary.LittleEndian.PutUint16(d[14:], flags)
		}
		q.pos++
		if q.pos == q.size {
			q.pos, q.wrap = 0, !q.wrap
		}
	}
	store32(q.ring, 16*head+12, headWord)
}

// used returns the used descriptor at the driver's used position, if the
// device wrote one, and moves past slots.
func (q *testPacked) used(slots int) (id uint16, length uint32, flags uint16, ok bool) {
	w := load32(q.ring, 16*q.usedPos+12)
	flags = uint16(w >> 16)
	want := uint16(0)
	if q.usedWrap {
		want = pkFlagAvail | pkFlagUsed
	}
	if flags&(pkFlagAvail|pkFlagUsed) != want {
		return 0, 0, flags, false
	}
	length = binary.LittleEndian.Uint32(q.ring[16*q.usedPos+8:])
	q.usedPos += slots
	for q.usedPos >= q.size {
		q.usedPos -= q.size
		q.usedWrap = !q.usedWrap
	}
	return uint16(w), length, flags, true
}

// setDriverEvent writes the driver event suppression area.
func (q *testPacked) setDriverEvent(offWrap, flags uint16) {
	store32(q.drv, 0, uint32(offWrap)|uint32(flags)<<16)
}

// deviceEvent reads the device event suppression area.
func (q *testPacked) deviceEvent() (offWrap, flags uint16) {
	w := load32(q.dev, 0)
	return uint16(w), uint16(w >> 16)
}

// testPackedDev is a modern device with packed rings negotiated and its
// RX and TX queues set up by hand.
type testPackedDev struct {
	n      *Net
	mem    *virtqueue.HeapDMA
	rx, tx *testPacked
	irq    []virtio.Interrupt
	frames *capture
}

func newTestPackedDev(t *testing.T, offered uint64) *testPackedDev {
	t.Helper()
	mem := &virtqueue.HeapDMA{}
	c := &capture{}
	n, err := New(Config{Mem: mem, Features: offered | virtio.FeatureRingPacked, QueueSize: 8, Capture: c.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	st := virtio.StatusAcknowledge | virtio.StatusDriver
	n.SetStatus(st)
	n.SetDriverFeatures(n.DeviceFeatures())
	st |= virtio.StatusFeaturesOK
	n.SetStatus(st)
	if n.Status()&virtio.StatusFeaturesOK == 0 {
		t.Fatalf("FEATURES_OK refused: %v", n.Stats().LastError)
	}
	d := &testPackedDev{n: n, mem: mem, frames: c}
	d.rx, d.tx = newTestPacked(t, mem, 8), newTestPacked(t, mem, 8)
	for q, p := range []*testPacked{d.rx, d.tx} {
		if err := n.SetupQueue(q, 8, p.phys[0], p.phys[1], p.phys[2]); err != nil {
			t.Fatal(err)
		}
	}
	if d.irq, _, err = n.Interrupts(2); err != nil {
		t.Fatal(err)
	}
	n.SetStatus(st | virtio.StatusDriverOK)
	return d
}

func (d *testPackedDev) notify(q int) {
	d.n.Notify(q)
	d.n.Sync()
}

func TestPackedTransmitReturnsEachIdAtTheDevicePosition(t *testing.T) {
	d := newTestPackedDev(t, 0)
	hl := HeaderLenMrgBuf
	var want [][]byte
	// Ids chosen unlike positions; chains of 2 and 1 slots; enough of
	// them to go round the 8-slot ring twice.
	for i := range 10 {
		frame := pattern(60 + i)
		want = append(want, frame)
		hdr := alloc(t, d.mem, hl, false)
		body := alloc(t, d.mem, len(frame), false)
		copy(body.b, frame)
		id := uint16(100 + i)
		slots := 1
		if i%2 == 0 {
			d.tx.put(id, []testBuf{hdr, body}, nil)
			slots = 2
		} else {
			whole := alloc(t, d.mem, hl+len(frame), false)
			copy(whole.b[hl:], frame)
			d.tx.put(id, []testBuf{whole}, nil)
		}
		d.notify(QueueTX)
		got, length, flags, ok := d.tx.used(slots)
		if !ok || got != id || length != 0 || flags&descFWrite != 0 {
			t.Fatalf("chain %d: used id %d len %d flags %#x ok %v, want id %d, len 0 without WRITE", i, got, length, flags, ok, id)
		}
	}
	frames := d.frames.take()
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i := range frames {
		if !bytes.Equal(frames[i].Data, want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if s := d.n.Stats(); s.DriverErrors != 0 {
		t.Fatalf("driver errors: %v", s.LastError)
	}
}

func TestPackedReceiveWritesLengthsWithoutTheWriteFlagAsQEMUDoes(t *testing.T) {
	d := newTestPackedDev(t, FeatureMrgRxbuf)
	bufs := map[uint16]testBuf{}
	for i := range 8 {
		b := alloc(t, d.mem, 64, true)
		bufs[uint16(40+i)] = b
		d.rx.put(uint16(40+i), []testBuf{b}, nil)
	}
	d.notify(QueueRX)
	frame := pattern(150) // 12 + 150 bytes: three 64-byte buffers
	d.n.Inject(Frame{Data: frame})
	d.n.Sync()
	var got []byte
	for i := range 3 {
		id, length, flags, ok := d.rx.used(1)
		if !ok || flags&descFWrite != 0 || int(length) > 64 {
			t.Fatalf("buffer %d: id %d len %d flags %#x ok %v", i, id, length, flags, ok)
		}
		got = append(got, bufs[id].b[:length]...)
	}
	if h, _ := parseHeader(got, HeaderLenMrgBuf); h.NumBuffers != 3 || !bytes.Equal(got[HeaderLenMrgBuf:], frame) {
		t.Fatalf("num_buffers %d, data equal %v", h.NumBuffers, bytes.Equal(got[HeaderLenMrgBuf:], frame))
	}
}

func TestPackedDriverViolationsBreakTheDevice(t *testing.T) {
	tests := []struct {
		name    string
		offered uint64
		post    func(d *testPackedDev, buf func() testBuf)
		want    error
	}{
		{"id made available twice while held", FeatureMrgRxbuf, func(d *testPackedDev, buf func() testBuf) {
			// A frame spread over two receive buffers: the device holds
			// the first when it takes the second, which repeats its id.
			d.rx.put(5, []testBuf{buf()}, nil)
			d.rx.put(5, []testBuf{buf()}, nil)
			d.notify(QueueRX)
			d.n.Inject(Frame{Data: pattern(1000)})
		}, ErrIDInUse},
		{"descriptors of a chain with different ids", 0, func(d *testPackedDev, buf func() testBuf) {
			d.tx.put(5, []testBuf{buf(), buf()}, func(i int, id, f uint16) (uint16, uint16) { return id + uint16(i), f })
			d.notify(QueueTX)
		}, ErrIDMismatch},
		{"second descriptor not marked available", 0, func(d *testPackedDev, buf func() testBuf) {
			d.tx.put(5, []testBuf{buf(), buf()}, func(i int, id, f uint16) (uint16, uint16) {
				if i == 1 {
					f &^= pkFlagAvail | pkFlagUsed
				}
				return id, f
			})
			d.notify(QueueTX)
		}, ErrChainFlags},
		{"indirect descriptor without INDIRECT_DESC", 0, func(d *testPackedDev, buf func() testBuf) {
			d.tx.put(5, []testBuf{buf()}, func(i int, id, f uint16) (uint16, uint16) { return id, f | descFIndirect })
			d.notify(QueueTX)
		}, ErrIndirectFeature},
		{"indirect descriptor inside a chain", virtio.FeatureIndirectDesc, func(d *testPackedDev, buf func() testBuf) {
			d.tx.put(5, []testBuf{buf(), buf()}, func(i int, id, f uint16) (uint16, uint16) {
				if i == 1 {
					f |= descFIndirect
				}
				return id, f
			})
			d.notify(QueueTX)
		}, ErrIndirectNext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestPackedDev(t, tt.offered)
			buf := func() testBuf { return alloc(t, d.mem, 256, false) }
			if errors.Is(tt.want, ErrIDInUse) {
				buf = func() testBuf { return alloc(t, d.mem, 600, true) }
			}
			tt.post(d, buf)
			d.n.Sync()
			s := d.n.Stats()
			if s.DriverErrors == 0 || !errors.Is(s.LastError, tt.want) {
				t.Fatalf("driver errors %d, last %v; want %v", s.DriverErrors, s.LastError, tt.want)
			}
			if d.n.Status()&virtio.StatusNeedsReset == 0 {
				t.Error("device not marked DEVICE_NEEDS_RESET")
			}
		})
	}
}

func TestPackedEventSuppressionBothWays(t *testing.T) {
	for _, eventIdx := range []bool{false, true} {
		name := "flags"
		var offered uint64
		if eventIdx {
			name, offered = "event_idx", virtio.FeatureEventIdx
		}
		t.Run(name, func(t *testing.T) {
			d := newTestPackedDev(t, offered)
			irq := d.irq[QueueTX]
			send := func() {
				b := alloc(t, d.mem, 100, false)
				d.tx.put(1, []testBuf{b}, nil)
				d.notify(QueueTX)
				if _, _, _, ok := d.tx.used(1); !ok {
					t.Fatal("chain not used")
				}
			}
			// Interrupts disabled: none.
			d.tx.setDriverEvent(0, pkEventDisable)
			send()
			if pendingIRQ(irq) {
				t.Fatal("interrupt while the driver disabled them")
			}
			if eventIdx {
				// Ask for an interrupt at slot 3 of the first lap (the
				// used position is at 1): the next completion (slot 1)
				// does not reach it, the two after it do at slot 3.
				d.tx.setDriverEvent(3|pkEventWrap, pkEventDesc)
				send()
				if pendingIRQ(irq) {
					t.Fatal("interrupt before the event slot")
				}
				send()
				if pendingIRQ(irq) {
					t.Fatal("interrupt before the event slot")
				}
				send()
				if !pendingIRQ(irq) {
					t.Fatal("no interrupt at the event slot")
				}
				// After the drain the device names the slot it wants
				// to hear about: the driver's next one, with its wrap.
				ow, f := d.tx.deviceEvent()
				if f != pkEventDesc || ow != uint16(d.tx.pos)|pkEventWrap {
					t.Fatalf("device event off_wrap %#x flags %d, want %#x desc", ow, f, uint16(d.tx.pos)|pkEventWrap)
				}
			} else {
				d.tx.setDriverEvent(0, pkEventEnable)
				send()
				if !pendingIRQ(irq) {
					t.Fatal("no interrupt with interrupts enabled")
				}
				if _, f := d.tx.deviceEvent(); f != pkEventEnable {
					t.Fatalf("device event flags %d, want enable after the drain", f)
				}
			}
		})
	}
}

// FuzzHostilePackedDriver fills packed descriptor rings with arbitrary
// descriptors (addresses in and out of memory, any lengths, flags, ids and
// wrap bits) and arbitrary event suppression areas: the device must never
// panic, and whatever it rejects must be a counted DriverError.
func FuzzHostilePackedDriver(f *testing.F) {
	f.Add([]byte{0, 12, 0x80, 1, 0, 1, 60, 0x80, 0, 0}, uint8(1))
	f.Add([]byte{4, 16, 0x84, 0, 0, 2, 40, 0x81, 2, 0, 3, 12, 0x02, 2, 0}, uint8(2))
	f.Add([]byte{0, 0, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, events uint8) {
		d := newTestPackedDev(t, FeatureMrgRxbuf|FeatureCsum|FeatureHostTSO4|virtio.FeatureIndirectDesc|virtio.FeatureEventIdx)
		var pool [4]testBuf
		for i := range pool {
			pool[i] = alloc(t, d.mem, 96, true)
		}
		for _, q := range []*testPacked{d.rx, d.tx} {
			for i := 0; i+5 <= len(data) && i/5 < q.size; i += 5 {
				addr := uint64(0x1000) // outside memory
				if k := int(data[i]) % 5; k < 4 {
					addr = pool[k].phys
				}
				length := uint32(data[i+1]) % 112
				flags := uint16(data[i+2]&0x87) | uint16(data[i+3]&0x80)<<8
				if flags&descFIndirect != 0 {
					length = 16 * uint32(1+data[i+1]%4)
				}
				b := q.ring[16*(i/5):]
				binary.LittleEndian.PutUint64(b, addr)
				binary.LittleEndian.PutUint32(b[8:], length)
				store32(q.ring, 16*(i/5)+12, uint32(data[i+4])|uint32(flags)<<16)
			}
			q.setDriverEvent(uint16(events)<<8|uint16(events), uint16(events&3))
		}
		d.n.Inject(Frame{Data: pattern(150)})
		d.notify(QueueTX)
		d.notify(QueueRX)
		s := d.n.Stats()
		var de *DriverError
		if s.DriverErrors > 0 && !errors.As(s.LastError, &de) {
			t.Fatalf("driver error not a *DriverError: %v", s.LastError)
		}
	})
}
