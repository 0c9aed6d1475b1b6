package devmodel

import (
	"bytes"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func TestConnectResolvesOffloadsForTheReceiver(t *testing.T) {
	tests := []struct {
		name     string
		bAccept  uint64
		wantPkts int
		wantGSO  uint8
	}{
		{"a GUEST_TSO4 receiver gets the GSO packet whole", FeatureGuestCsum | FeatureGuestTSO4, 1, GSOTCPv4},
		{"a receiver without offloads gets checksummed segments", 0, 5, GSONone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aFeat := FeatureCsum | FeatureHostTSO4 | FeatureMrgRxbuf
			a := newTestDev(t, Config{Features: aFeat}, aFeat)
			bFeat := FeatureGuestCsum | FeatureGuestTSO4 | FeatureMrgRxbuf
			b := newTestDev(t, Config{Features: bFeat, QueueSize: 64}, tc.bAccept|FeatureMrgRxbuf)
			Connect(a.n, b.n)
			bufs := b.postPages(40, 4096)
			b.notify(QueueRX)
			payload := pattern(6000)
			frame, cs, co := tcpFrame(tcpSpec{payload: payload, seq: 1, flags: header.TCPFlagAck, partial: true, gso: true})
			a.send(Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1448, CsumStart: uint16(cs), CsumOffset: uint16(co)}, frame, false)
			a.notify(QueueTX)
			b.n.Sync()
			var got []byte
			pkts := 0
			for {
				id, n, ok := b.rx.pop()
				if !ok {
					break
				}
				pkt := bufs[id].b[:n]
				h, _ := parseHeader(pkt, HeaderLenMrgBuf)
				if h.GSOType != tc.wantGSO {
					t.Errorf("gso_type %d, want %d", h.GSOType, tc.wantGSO)
				}
				pkt = append([]byte(nil), pkt[HeaderLenMrgBuf:]...)
				for i := 1; i < int(h.NumBuffers); i++ {
					id, n, _ := b.rx.pop()
					pkt = append(pkt, bufs[id].b[:n]...)
				}
				if h.GSOType == GSONone {
					got = append(got, checkTCPFrame(t, pkt).payload...)
				} else if !bytes.Equal(pkt, frame) {
					t.Errorf("GSO packet changed on the wire")
				} else {
					got = payload
				}
				pkts++
			}
			if pkts != tc.wantPkts || !bytes.Equal(got, payload) {
				t.Fatalf("%d packets, %d payload bytes; want %d packets, %d bytes (stats %+v)", pkts, len(got), tc.wantPkts, len(payload), b.n.Stats())
			}
		})
	}
}

func TestConnectBothWays(t *testing.T) {
	a := newTestDev(t, Config{Features: FeatureMrgRxbuf}, FeatureMrgRxbuf|virtio.FeatureVersion1)
	b := newTestDev(t, Config{Legacy: true}, 0)
	Connect(a.n, b.n)
	aBufs := a.postPages(4, 2048)
	a.notify(QueueRX)
	bBuf := alloc(t, b.mem, 1600, true)
	b.rx.add(bBuf)
	b.notify(QueueRX)
	fa, fb := pattern(100), pattern(200)
	a.send(Header{}, fa, false)
	a.notify(QueueTX)
	b.send(Header{}, fb, false)
	b.notify(QueueTX)
	a.n.Sync()
	b.n.Sync()
	if _, n, ok := b.rx.pop(); !ok || !bytes.Equal(bBuf.b[HeaderLen:n], fa) {
		t.Errorf("legacy side did not receive a's frame with a 10-byte header")
	}
	if id, n, ok := a.rx.pop(); !ok || !bytes.Equal(aBufs[id].b[HeaderLenMrgBuf:n], fb) {
		t.Errorf("modern side did not receive b's frame with a 12-byte header")
	}
}

func TestConnectedSenderWaitsForTheReceiver(t *testing.T) {
	const frames = wireQueue + 40
	// A long stall, so that a slow test machine never makes a drop.
	a := newTestDev(t, Config{QueueSize: 512, WireStall: time.Minute}, 0)
	b := newTestDev(t, Config{Features: FeatureMrgRxbuf, QueueSize: 512, RxBacklog: 8}, FeatureMrgRxbuf)
	Connect(a.n, b.n)
	for i := 0; i < frames; i++ {
		a.sendFlat(Header{}, pattern(60+i))
	}
	a.notify(QueueTX)
	b.n.Sync()
	a.n.Sync()
	// b has no buffers: it holds RxBacklog frames, the wire holds
	// wireQueue, and a keeps the rest in its ring.
	if got := a.tx.usedIdx(); got != wireQueue+8 {
		t.Fatalf("sender completed %d chains, want %d", got, wireQueue+8)
	}
	bufs := b.postPages(frames, 512)
	b.notify(QueueRX)
	for i := 0; i < 10 && b.n.Stats().RxFrames < frames; i++ {
		a.n.Sync()
		b.n.Sync()
	}
	if s := b.n.Stats(); s.RxFrames != frames || s.RxDropBacklog+s.RxDropNoBuffers != 0 {
		t.Fatalf("receiver stats %+v", s)
	}
	if s := a.n.Stats(); s.TxDropWireFull != 0 || a.tx.usedIdx() != frames {
		t.Fatalf("sender stats %+v, used.idx %d", s, a.tx.usedIdx())
	}
	for i := 0; i < frames; i++ {
		id, n, _ := b.rx.pop()
		if got := bufs[id].b[HeaderLenMrgBuf:n]; !bytes.Equal(got, pattern(60+i)) {
			t.Fatalf("frame %d (id %d, %d bytes) out of order or damaged: got %d bytes % x...", i, id, n, len(got), got[:min(len(got), 8)])
		}
	}
}

func TestConnectedSenderDropsWhenTheReceiverStalls(t *testing.T) {
	const frames = wireQueue + 20
	a := newTestDev(t, Config{QueueSize: 512}, 0)
	b := newTestDev(t, Config{QueueSize: 512, RxBacklog: 1}, 0)
	Connect(a.n, b.n)
	for i := 0; i < frames; i++ {
		a.sendFlat(Header{}, pattern(60))
	}
	a.notify(QueueTX)
	qs, _, _ := a.n.Interrupts(2)
	for a.tx.usedIdx() != frames {
		waitIRQ(t, qs[QueueTX])
	}
	// b holds one frame and the wire wireQueue; the rest is dropped (a
	// frame fewer if b's goroutine was late to take its first one).
	if s := a.n.Stats(); s.TxDropWireFull == 0 || s.TxDropWireFull > frames-wireQueue-1 {
		t.Fatalf("sender dropped %d frames, want up to %d: %+v", s.TxDropWireFull, frames-wireQueue-1, s)
	}
}
