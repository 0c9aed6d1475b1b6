package virtionet

import (
	"encoding/binary"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// fuzzModes are the receive layouts the fuzzer picks from.
var fuzzModes = []uint64{
	virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6,
	FeatureMrgRxbuf, // legacy, 12-byte header
	virtio.FeatureVersion1 | FeatureGuestCsum | FeatureGuestTSO4,
	FeatureGuestCsum | FeatureGuestTSO6, // legacy big buffers, 10-byte header
	virtio.FeatureVersion1,              // MTU-sized buffers
}

// FuzzRxReassembly plays a hostile device against the receive path: the
// input is a script of used entries with arbitrary ids, lengths, headers
// and num_buffers, mixed with well-formed packets. Whatever it does, the
// driver must not panic, must never post a page twice, must refill the
// ring completely after each poll, and must account for every page it
// ever allocated (posted, spare, or handed up with a packet).
func FuzzRxReassembly(f *testing.F) {
	f.Add([]byte{0, 0, 0x40, 0x00})
	f.Add([]byte{0, 1, 0, 0, 0xff, 0xff, 0x02, 0x00, 0x01, 0x03, 0x00})
	f.Add([]byte{2, 1, 5, 0, 0x00, 0x20, 0x00, 0x00, 0x01, 0x81, 0x05, 0x00, 0, 0, 0xff, 0x3f})
	f.Add([]byte{1, 1, 0, 0, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0xff, 0xff, 3, 0x00, 0x02})
	f.Fuzz(fuzzRx)
}

// fuzzRx runs one FuzzRxReassembly script.
func fuzzRx(t *testing.T, script []byte) {
	{
		if len(script) < 1 {
			return
		}
		features := fuzzModes[int(script[0])%len(fuzzModes)]
		script = script[1:]
		h := newRxHarness(t, 16, features, 1500)
		h.keep = false
		for len(script) > 0 {
			op := script[0]
			script = script[1:]
			switch op % 4 {
			case 0: // a well-formed packet
				if len(script) < 2 {
					return
				}
				size := int(binary.LittleEndian.Uint16(script)) % 20000
				script = script[2:]
				if size > 1514 && features&(FeatureMrgRxbuf|FeatureGuestTSO4|FeatureGuestTSO6) == 0 {
					size = 1514
				}
				h.send(Header{}, frameOf(size, op))
			case 1: // one used entry with a hostile header and length
				if len(script) < 10 {
					return
				}
				hdr := Header{
					Flags:      script[0],
					GSOType:    script[1],
					NumBuffers: binary.LittleEndian.Uint16(script[2:]),
					CsumStart:  binary.LittleEndian.Uint16(script[4:]),
				}
				n := binary.LittleEndian.Uint32(script[6:])
				script = script[10:]
				head, chain, ok := h.q.takeAvail()
				if !ok {
					continue
				}
				data := make([]byte, min(int(n)%70000, 70000))
				if len(data) < h.r.hdrLen {
					data = make([]byte, h.r.hdrLen)
				}
				hdr.Encode(data[:h.r.hdrLen])
				h.write(chain, data)
				h.q.pushUsed(uint32(head), n%(1<<17))
			case 2: // a used entry with an arbitrary id
				if len(script) < 4 {
					return
				}
				id := uint32(binary.LittleEndian.Uint16(script))
				n := uint32(binary.LittleEndian.Uint16(script[2:]))
				script = script[4:]
				h.q.pushUsed(id%40, n)
			case 3: // the driver polls
				h.pollAndCheck()
			}
		}
		h.pollAndCheck()
	}
}

// pollAndCheck polls and checks the invariants of FuzzRxReassembly.
func (h *rxHarness) pollAndCheck() {
	h.t.Helper()
	h.poll()
	h.checkRingFull()
	s := h.c.snapshot()
	posted := 0
	for _, p := range h.r.posted {
		posted += len(p)
	}
	if got := uint64(posted+len(h.r.spare)) + s.RxPagesUp; got != s.RxPagesAllocated {
		h.t.Fatalf("page lost: %d posted + %d spare + %d handed up != %d allocated", posted, len(h.r.spare), s.RxPagesUp, s.RxPagesAllocated)
	}
}

// FuzzTxCompletions plays a hostile device against the transmit path: the
// script interleaves writes with used entries of arbitrary ids and lengths.
// No packet may be released while its chain is in flight, none twice, and
// after Detach every packet the driver took must be released.
func FuzzTxCompletions(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 2, 3, 0, 0, 0x40, 1, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, script []byte) {
		h := newTxHarness(t, 8, virtio.FeatureVersion1)
		h.tx.fullWait = 0
		released := map[int]int{} // packet index -> release count
		var pkts []*stack.PacketBuffer
		for len(script) > 0 {
			op := script[0]
			script = script[1:]
			switch op % 3 {
			case 0: // write a packet
				i := len(pkts)
				p := stack.NewPacketBuffer(stack.PacketBufferOptions{
					ReserveHeaderBytes: 14,
					Payload:            buffer.MakeWithData(frameOf(int(op)*37%3000+1, op)),
					OnRelease:          func() { released[i]++ },
				})
				p.LinkHeader().Push(14)
				pkts = append(pkts, p)
				h.tx.Write([]*stack.PacketBuffer{p})
				p.DecRef() // the driver holds its own reference if it took it
			case 1: // the device completes an arbitrary id
				if len(script) < 2 {
					return
				}
				h.q.pushUsed(uint32(script[0])%12, uint32(script[1])%3)
				script = script[2:]
			case 2: // the completion loop runs
				h.tx.ReleaseSent()
			}
			for i, n := range released {
				if n > 1 {
					t.Fatalf("packet %d released %d times", i, n)
				}
			}
			// A packet whose chain is still in flight must not be
			// released.
			for head := range h.q.inFlight() {
				if e := h.tx.inflight[head]; e.pkt == nil {
					t.Fatalf("chain %d in flight without its packet", head)
				}
			}
		}
		h.tx.ReleaseSent()
		h.tx.Detach()
		for i := range pkts {
			if released[i] != 1 {
				t.Fatalf("packet %d released %d times after Detach", i, released[i])
			}
		}
	})
}
