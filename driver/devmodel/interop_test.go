package devmodel

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
)

// These tests drive the model with the real driver-side virtqueue package:
// two independent implementations of the ring protocol checking each other
// across wrap-around, EVENT_IDX, indirect tables, both split layouts and
// packed rings.

// vqDev is a device whose queues are driven by virtqueue.Split or, with
// RING_PACKED accepted, virtqueue.Packed.
type vqDev struct {
	n   *Net               // the device
	mem *virtqueue.HeapDMA // driver memory
	rx  virtqueue.Queue    // receive queue, driver side
	tx  virtqueue.Queue    // transmit queue, driver side
	irq []virtio.Interrupt // per-queue interrupts
}

func newVQDev(t *testing.T, cfg Config, accept uint64) *vqDev {
	t.Helper()
	mem := &virtqueue.HeapDMA{}
	cfg.Mem = mem
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
	f := accept & n.DeviceFeatures()
	n.SetDriverFeatures(f)
	st := virtio.StatusAcknowledge | virtio.StatusDriver
	if !n.Legacy() {
		st |= virtio.StatusFeaturesOK
		n.SetStatus(st)
	}
	d := &vqDev{n: n, mem: mem}
	opts := virtqueue.Options{Legacy: n.Legacy(), EventIdx: f&virtio.FeatureEventIdx != 0, Indirect: f&virtio.FeatureIndirectDesc != 0}
	for q, p := range []*virtqueue.Queue{&d.rx, &d.tx} {
		opts.Size = n.QueueMaxSize(q)
		var s virtqueue.Queue
		var err error
		if f&virtio.FeatureRingPacked != 0 {
			s, err = virtqueue.NewPacked(mem, opts)
		} else {
			s, err = virtqueue.NewSplit(mem, opts)
		}
		if err != nil {
			t.Fatal(err)
		}
		desc, avail, used := s.Addresses()
		if err := n.SetupQueue(q, s.Size(), desc, avail, used); err != nil {
			t.Fatal(err)
		}
		*p = s
	}
	if d.irq, _, err = n.Interrupts(2); err != nil {
		t.Fatal(err)
	}
	n.SetStatus(st | virtio.StatusDriverOK)
	return d
}

// drain pops q NAPI style until count completions were seen: disable
// interrupts, pop, re-enable, and wait for the interrupt only when
// EnableInterrupts says nothing arrived meanwhile.
func drain(t *testing.T, q virtqueue.Queue, irq virtio.Interrupt, count int, each func(head uint16, n uint32)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for count > 0 {
		q.DisableInterrupts()
		for count > 0 {
			head, n, ok, err := q.Pop()
			if err != nil {
				t.Fatalf("Pop: %v", err)
			}
			if !ok {
				break
			}
			each(head, n)
			count--
		}
		if count == 0 {
			return
		}
		if q.EnableInterrupts() {
			continue
		}
		if err := irq.Wait(ctx); err != nil {
			t.Fatalf("waiting for %d more completions: %v", count, err)
		}
	}
}

func TestInteropWithVirtqueue(t *testing.T) {
	for _, ring := range []string{"legacy split", "modern split", "packed"} {
		legacy, packed := ring == "legacy split", ring == "packed"
		for _, feat := range []uint64{0, virtio.FeatureEventIdx, virtio.FeatureIndirectDesc, virtio.FeatureEventIdx | virtio.FeatureIndirectDesc} {
			if packed {
				feat |= virtio.FeatureRingPacked
			}
			name := fmt.Sprintf("%s/features=%#x", ring, feat)
			t.Run(name, func(t *testing.T) {
				var c capture
				offered := FeatureMrgRxbuf | feat
				d := newVQDev(t, Config{Legacy: legacy, Features: offered, QueueSize: 16, Capture: c.add}, offered|virtio.FeatureVersion1)
				hl := d.n.hdrLenForTest()
				const packets = 200
				// Transmit: more packets than the ring holds, so ids wrap.
				hdr, hphys, _ := d.mem.Alloc(hl, 16)
				_ = hdr
				sent := 0
				for i := 0; i < packets; i++ {
					frame := pattern(60 + i)
					fb, fphys, _ := d.mem.Alloc(len(frame), 16)
					copy(fb, frame)
					for {
						_, err := d.tx.Add([]virtqueue.Buffer{{Addr: hphys, Len: uint32(hl)}, {Addr: fphys, Len: uint32(len(frame))}})
						if err == nil {
							break
						}
						if d.tx.Kick() {
							d.n.Notify(QueueTX)
						}
						drain(t, d.tx, d.irq[QueueTX], 1, func(uint16, uint32) { sent++ })
					}
					if d.tx.Kick() {
						d.n.Notify(QueueTX)
					}
				}
				drain(t, d.tx, d.irq[QueueTX], packets-sent, func(uint16, uint32) { sent++ })
				frames := c.take()
				if len(frames) != packets {
					t.Fatalf("%d frames transmitted, want %d", len(frames), packets)
				}
				for i, f := range frames {
					if !bytes.Equal(f.Data, pattern(60+i)) {
						t.Fatalf("frame %d differs", i)
					}
				}
				// Receive: keep the ring full of 256-byte buffers and
				// receive frames spanning several of them.
				bufs := map[uint16][]byte{}
				post := func() {
					for d.rx.Free() > 0 {
						b, p, _ := d.mem.Alloc(256, 16)
						head, err := d.rx.Add([]virtqueue.Buffer{{Addr: p, Len: 256, Writable: true}})
						if err != nil {
							t.Fatal(err)
						}
						bufs[head] = b
					}
					if d.rx.Kick() {
						d.n.Notify(QueueRX)
					}
				}
				post()
				for i := 0; i < 50; i++ {
					frame := pattern(100 + 13*i)
					d.n.Inject(Frame{Data: frame})
					var got []byte
					want := 1
					drain(t, d.rx, d.irq[QueueRX], 1, func(head uint16, n uint32) {
						b := bufs[head][:n]
						h, _ := parseHeader(b, hl)
						want = int(h.NumBuffers)
						got = append(got, b[hl:]...)
					})
					if want > 1 {
						drain(t, d.rx, d.irq[QueueRX], want-1, func(head uint16, n uint32) {
							got = append(got, bufs[head][:n]...)
						})
					}
					if !bytes.Equal(got, frame) {
						t.Fatalf("frame %d: received %d bytes over %d buffers, sent %d", i, len(got), want, len(frame))
					}
					post()
				}
				if s := d.n.Stats(); s.DriverErrors != 0 || s.RxDropNoBuffers != 0 {
					t.Errorf("stats %+v", s)
				}
			})
		}
	}
}
