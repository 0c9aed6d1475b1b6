package virtqueue

import (
	"errors"
	"testing"
)

// fuzzInput hands out the fuzzer's bytes; once they run out it returns
// zeros, which the op decoder reads as the end.
type fuzzInput struct {
	b []byte // what is left
}

func (in *fuzzInput) u8() byte {
	if len(in.b) == 0 {
		return 0
	}
	v := in.b[0]
	in.b = in.b[1:]
	return v
}

func (in *fuzzInput) u16() uint16 { return uint16(in.u8()) | uint16(in.u8())<<8 }
func (in *fuzzInput) u32() uint32 { return uint32(in.u16()) | uint32(in.u16())<<16 }

// chain decodes a chain of 1 to 5 buffers, the last of them writable as
// the input says, and returns it with the bytes the device may write.
func (in *fuzzInput) chain() (bufs []Buffer, writable uint32) {
	shape := in.u8()
	n := 1 + int(shape%5)
	bufs = make([]Buffer, n)
	nw := int(shape>>4) % (n + 1) // trailing writable buffers
	for i := range bufs {
		bufs[i] = Buffer{Addr: 0x1000 * uint64(i+1), Len: 1 + uint32(in.u8()), Writable: i >= n-nw}
		if bufs[i].Writable {
			writable += bufs[i].Len
		}
	}
	return bufs, writable
}

// Fuzz ops, one byte each (value mod fuzzOps) followed by their operands.
const (
	opAdd         = iota // chain shape byte, then one length byte per buffer
	opKick               // publish
	opComplete           // device: selector byte, then id/len bytes; publishes one entry
	opRawEntry           // device: slot byte, id u32, len u32; no publish
	opSetUsedIdx         // device: publishes used.idx u16
	opBumpUsed           // device: publishes used.idx + (byte)
	opDrain              // driver: Pop until empty
	opInterrupts         // driver: byte&1 ? Disable : Enable
	opDeviceTakes        // device: consume avail entries (follows the chains)
	fuzzOps
)

// FuzzPop drives a queue with a hostile device: arbitrary used entries,
// used.idx jumps and rewinds, duplicates, lengths, interleaved with
// driver Adds, Kicks and interrupt toggling. Invariants checked after every
// step: no panic; free descriptors plus those of the chains in flight are
// all of them; Pop only ever returns heads that were in flight (and frees
// them), with written no larger than the chain's writable bytes; a drain
// always ends. At the end every chain is recoverable: by a well-behaved
// device completing them, or by DetachUnused.
func FuzzPop(f *testing.F) {
	f.Add([]byte{0x03, opAdd, 0x11, 5, 9, opKick, opComplete, 0, 0, opDrain})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{b: data}
		cfg := in.u8()
		opts := Options{
			Size:     1 << ((cfg & 0x0f) % 6), // 1..32
			EventIdx: cfg&0x10 != 0,
			Indirect: cfg&0x20 != 0,
			Legacy:   cfg&0x40 != 0,
		}
		detachAtEnd := cfg&0x80 != 0
		q, dev, _ := newQueue(t, opts)
		model := map[uint16]uint32{} // heads in flight -> writable bytes posted
		var order []uint16           // heads in flight, for the device to pick from

		check := func(what string) {
			t.Helper()
			checkAccounting(t, q)
			if len(model) != q.InFlight() {
				t.Fatalf("%s: model has %d chains in flight, queue %d", what, len(model), q.InFlight())
			}
			for h := range model {
				if q.chainDescs[h] == 0 {
					t.Fatalf("%s: head %d in flight in the model, free in the queue", what, h)
				}
			}
		}
		forget := func(h uint16) {
			delete(model, h)
			for i, o := range order {
				if o == h {
					order = append(order[:i], order[i+1:]...)
					break
				}
			}
		}
		drain := func() {
			t.Helper()
			for i := 0; ; i++ {
				if i > 2*q.Size()+4 {
					t.Fatalf("drain does not end: lastUsed %d usedSeen %d dev.usedIdx %d", q.lastUsed, q.usedSeen, dev.usedIdx)
				}
				h, n, ok, err := q.Pop()
				if !ok {
					if err != nil {
						t.Fatalf("Pop: not ok with error %v", err)
					}
					return
				}
				posted, inFlight := model[h]
				switch {
				case err == nil:
					if !inFlight || n > posted {
						t.Fatalf("Pop returned head %d (in flight %v) written %d > posted %d", h, inFlight, n, posted)
					}
					forget(h)
				case errors.Is(err, ErrBadLength):
					if !inFlight || n != 0 {
						t.Fatalf("ErrBadLength for head %d (in flight %v), written %d", h, inFlight, n)
					}
					forget(h)
				case errors.Is(err, ErrBadID), errors.Is(err, ErrNotInFlight), errors.Is(err, ErrBadUsedIdx):
					var de *DeviceError
					if !errors.As(err, &de) {
						t.Fatalf("error %v is not a *DeviceError", err)
					}
				default:
					t.Fatalf("Pop: unexpected error %v", err)
				}
				check("pop")
			}
		}

		for steps := 0; len(in.b) > 0 && steps < 1000; steps++ {
			switch in.u8() % fuzzOps {
			case opAdd:
				bufs, writable := in.chain()
				h, err := q.Add(bufs)
				switch {
				case err == nil:
					if _, dup := model[h]; dup {
						t.Fatalf("Add returned head %d already in flight", h)
					}
					model[h] = writable
					order = append(order, h)
				case errors.Is(err, ErrFull), errors.Is(err, ErrChainTooLong):
				default:
					t.Fatalf("Add: %v", err)
				}
			case opKick:
				q.Kick()
			case opComplete:
				sel := in.u8()
				var id, length uint32
				if sel&1 == 0 && len(order) > 0 {
					// A plausible completion of a chain in flight,
					// sometimes with a hostile length.
					h := order[int(sel>>1)%len(order)]
					id, length = uint32(h), model[h]
					if sel&2 != 0 {
						length += uint32(in.u8())
					} else {
						length -= min(length, uint32(in.u8()))
					}
				} else {
					id, length = uint32(in.u16()), in.u32()
				}
				dev.complete(id, length)
			case opRawEntry:
				dev.putUsed(uint16(in.u8()), in.u32(), in.u32())
			case opSetUsedIdx:
				dev.setUsedIdx(in.u16())
			case opBumpUsed:
				dev.setUsedIdx(dev.usedIdx + uint16(in.u8()))
			case opDrain:
				drain()
			case opInterrupts:
				if in.u8()&1 == 1 {
					q.DisableInterrupts()
				} else {
					q.EnableInterrupts()
				}
			case opDeviceTakes:
				for {
					if _, _, ok := dev.next(); !ok {
						break
					}
				}
			}
			check("step")
		}

		// Recovery: every chain in flight comes back.
		drain()
		if detachAtEnd {
			for {
				h, ok := q.DetachUnused()
				if !ok {
					break
				}
				if _, in := model[h]; !in {
					t.Fatalf("DetachUnused returned head %d not in flight", h)
				}
				forget(h)
			}
		} else {
			q.Kick()
			for h, posted := range model {
				dev.complete(uint32(h), posted)
			}
			for len(model) > 0 {
				h, n, ok, err := q.Pop()
				if !ok || err != nil || n != model[h] {
					t.Fatalf("well-behaved completion: head %d written %d ok %v err %v (model %v)", h, n, ok, err, model)
				}
				forget(h)
			}
		}
		if len(model) != 0 || q.Free() != q.Size() || q.InFlight() != 0 {
			t.Fatalf("after recovery: model %v, Free %d of %d, InFlight %d", model, q.Free(), q.Size(), q.InFlight())
		}
		check("end")
	})
}
