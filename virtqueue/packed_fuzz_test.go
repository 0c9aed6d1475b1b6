package virtqueue

import (
	"errors"
	"testing"
)

// Packed fuzz ops, one byte each (value mod packedFuzzOps) followed by
// their operands.
const (
	pkAdd       = iota // chain shape byte, then one length byte per buffer
	pkKick             // publish
	pkComplete         // device: selector byte (+ operands): a used descriptor at its position
	pkRawSlot          // device: slot byte, id u16, len u32, flags u16 anywhere in the ring
	pkSkip             // device: moves its used position by a byte's worth of slots
	pkDrain            // driver: Pop until empty
	pkInterrupt        // driver: byte&1 ? Disable : Enable
	pkDevEvent         // device: off_wrap u16, flags byte in its event area
	packedFuzzOps
)

// FuzzPackedPop drives a packed queue with a hostile device: used
// descriptors with arbitrary ids, lengths and flags (wrong wrap counters
// included), written at the device's position or anywhere, out of order,
// duplicated, with the device's position jumping, interleaved with driver
// Adds, Kicks and interrupt toggling. Checked after every step: no panic;
// the queue's invariants (Verify); Pop only returns ids in flight (and
// frees them) with written no larger than their writable bytes; a drain
// always ends. At the end DetachUnused recovers every chain.
func FuzzPackedPop(f *testing.F) {
	f.Add([]byte{0x03, pkAdd, 0x11, 5, 9, pkKick, pkComplete, 0, pkDrain})
	f.Add([]byte{0x13, pkAdd, 0x10, 5, pkAdd, 0x21, 1, 2, pkKick, pkComplete, 2, 7, pkComplete, 0, pkDrain, pkInterrupt, 0})
	f.Add([]byte{0x22, pkAdd, 0x02, 1, 2, 3, pkKick, pkRawSlot, 0, 0, 0, 9, 0, 0, 0, 0x80, 0x80, pkDrain})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{b: data}
		cfg := in.u8()
		opts := Options{
			Size:     1 + int(cfg&0x0f)%12, // 1..12, not only powers of two
			EventIdx: cfg&0x10 != 0,
			Indirect: cfg&0x20 != 0,
		}
		q, dev, _ := newPackedQueue(t, opts)
		type chain struct {
			writable uint32 // bytes posted
			slots    int    // ring slots taken
		}
		model := map[uint16]chain{} // ids in flight
		var order []uint16          // ids in flight, for the device to pick from

		forget := func(id uint16) {
			delete(model, id)
			for i, o := range order {
				if o == id {
					order = append(order[:i], order[i+1:]...)
					break
				}
			}
		}
		check := func(what string) {
			t.Helper()
			checkPackedAccounting(t, q)
			if len(model) != q.InFlight() {
				t.Fatalf("%s: model has %d chains in flight, queue %d", what, len(model), q.InFlight())
			}
		}
		drain := func() {
			t.Helper()
			for i := 0; ; i++ {
				if i > 2*q.Size()+4 {
					t.Fatalf("drain does not end: usedPos %d outstanding %d", q.usedPos, q.outstanding)
				}
				id, n, ok, err := q.Pop()
				if !ok {
					if err != nil {
						t.Fatalf("Pop: not ok with error %v", err)
					}
					return
				}
				c, inFlight := model[id]
				switch {
				case err == nil:
					if !inFlight || n > c.writable {
						t.Fatalf("Pop returned id %d (in flight %v) written %d > posted %d", id, inFlight, n, c.writable)
					}
					forget(id)
				case errors.Is(err, ErrBadLength):
					if !inFlight || n != 0 {
						t.Fatalf("ErrBadLength for id %d (in flight %v), written %d", id, inFlight, n)
					}
					forget(id)
				case errors.Is(err, ErrBadID), errors.Is(err, ErrNotInFlight), errors.Is(err, ErrBadWrap):
					var de *DeviceError
					if !errors.As(err, &de) || de.Error() == "" {
						t.Fatalf("error %v is not a *DeviceError", err)
					}
				default:
					t.Fatalf("Pop: unexpected error %v", err)
				}
				check("pop")
			}
		}

		for steps := 0; len(in.b) > 0 && steps < 1000; steps++ {
			switch in.u8() % packedFuzzOps {
			case pkAdd:
				bufs, writable := in.chain()
				n := len(bufs)
				id, err := q.Add(bufs)
				switch {
				case err == nil:
					if _, dup := model[id]; dup || int(id) >= q.Size() {
						t.Fatalf("Add returned id %d, in flight already or out of range", id)
					}
					slots := n
					if q.indirect != nil && n > 1 && n <= q.indirectMax {
						slots = 1
					}
					model[id] = chain{writable, slots}
					order = append(order, id)
				case errors.Is(err, ErrFull), errors.Is(err, ErrChainTooLong):
				default:
					t.Fatalf("Add: %v", err)
				}
			case pkKick:
				q.Kick()
			case pkComplete:
				sel := in.u8()
				if sel&1 == 0 && len(order) > 0 {
					// A plausible completion of a chain in flight,
					// sometimes with a hostile length.
					id := order[int(sel>>2)%len(order)]
					c := model[id]
					length := c.writable
					if sel&2 != 0 {
						length += uint32(in.u8())
					} else {
						length -= min(length, uint32(in.u8()))
					}
					dev.completeAs(id, length, c.slots)
				} else {
					dev.completeAs(in.u16(), in.u32(), 1+int(in.u8())%3)
				}
			case pkRawSlot:
				slot := int(in.u8()) % q.Size()
				dev.putUsed(slot, in.u16(), in.u32(), in.u16())
			case pkSkip:
				k := int(in.u8()) % q.Size()
				dev.skip(k, in.u8()&1 == 1)
			case pkDrain:
				drain()
			case pkInterrupt:
				if in.u8()&1 == 1 {
					q.DisableInterrupts()
				} else {
					q.EnableInterrupts()
				}
			case pkDevEvent:
				dev.setDevEvent(in.u16(), uint16(in.u8()))
			}
			check("step")
		}

		// Recovery: after a device reset every chain comes back.
		drain()
		for {
			id, ok := q.DetachUnused()
			if !ok {
				break
			}
			if _, in := model[id]; !in {
				t.Fatalf("DetachUnused returned id %d not in flight", id)
			}
			forget(id)
		}
		if len(model) != 0 || q.Free() != q.Size() || q.InFlight() != 0 {
			t.Fatalf("after recovery: model %v, Free %d of %d, InFlight %d", model, q.Free(), q.Size(), q.InFlight())
		}
		if err := q.Reset(); err != nil {
			t.Fatal(err)
		}
		check("end")
	})
}
