package devmodel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

// postPages posts count single-buffer writable chains of size bytes.
func (d *testDev) postPages(count, size int) []testBuf {
	var bufs []testBuf
	for i := 0; i < count; i++ {
		b := alloc(d.t, d.mem, size, true)
		d.rx.add(b)
		bufs = append(bufs, b)
	}
	return bufs
}

func TestRxMergeableSpreadsPacketAcrossBuffers(t *testing.T) {
	tests := []struct {
		name     string
		frameLen int
		bufSize  int
		wantBufs int
	}{
		{"a small frame fits one buffer", 60, 1024, 1},
		{"a frame exactly filling one buffer with its header", 1024 - 12, 1024, 1},
		{"one byte more needs a second buffer", 1024 - 11, 1024, 2},
		{"a 3000-byte frame takes three 1024-byte buffers", 3000, 1024, 3},
		{"a 65000-byte GSO frame takes sixteen pages", 65000, 4096, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDev(t, Config{Features: FeatureMrgRxbuf, QueueSize: 32}, FeatureMrgRxbuf|virtio.FeatureVersion1)
			bufs := d.postPages(20, tc.bufSize)
			d.notify(QueueRX)
			frame := pattern(tc.frameLen)
			d.n.Inject(Frame{Data: frame})
			d.n.Sync()
			var got []byte
			for i := 0; ; i++ {
				id, n, ok := d.rx.pop()
				if !ok {
					if i != tc.wantBufs {
						t.Fatalf("%d used entries, want %d", i, tc.wantBufs)
					}
					break
				}
				if int(id) != i {
					t.Fatalf("used id %d, want %d (buffers are used in order)", id, i)
				}
				b := bufs[id].b[:n]
				if i == 0 {
					h, _ := parseHeader(b, HeaderLenMrgBuf)
					if int(h.NumBuffers) != tc.wantBufs {
						t.Fatalf("num_buffers %d, want %d", h.NumBuffers, tc.wantBufs)
					}
					b = b[HeaderLenMrgBuf:]
				}
				got = append(got, b...)
			}
			if !bytes.Equal(got, frame) {
				t.Fatalf("reassembled %d bytes differ from the %d sent", len(got), len(frame))
			}
			if s := d.n.Stats(); s.RxFrames != 1 || s.RxBuffers != uint64(tc.wantBufs) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestRxMergeableWithoutEnoughBuffersWaitsInBacklog(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureMrgRxbuf, RxBacklog: 8}, FeatureMrgRxbuf)
	d.postPages(1, 1024)
	d.notify(QueueRX)
	d.n.Inject(Frame{Data: pattern(3000)})
	d.n.Sync()
	if d.rx.usedIdx() != 0 {
		t.Fatalf("a packet was delivered into too few buffers")
	}
	d.postPages(2, 1024)
	d.notify(QueueRX)
	if d.rx.usedIdx() != 3 {
		t.Fatalf("used.idx %d after posting enough buffers, want 3", d.rx.usedIdx())
	}
	// The first buffer used is the one posted first: the device gave it back
	// to the avail ring while waiting.
	if id, _, _ := d.rx.pop(); id != 0 {
		t.Errorf("first used id %d", id)
	}
}

func TestRxWithoutBuffersDropsAndCounts(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureMrgRxbuf}, FeatureMrgRxbuf)
	d.n.Inject(Frame{Data: pattern(100)})
	d.n.Sync()
	if s := d.n.Stats(); s.RxDropNoBuffers != 1 || s.RxFrames != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRxBigBuffersOneChainPerPacket(t *testing.T) {
	tests := []struct {
		name   string
		legacy bool
		accept uint64
		hdrLen int
	}{
		{"legacy without MRG_RXBUF uses the 10-byte header", true, 0, HeaderLen},
		{"modern without MRG_RXBUF uses the 12-byte header", false, virtio.FeatureVersion1, HeaderLenMrgBuf},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDev(t, Config{Legacy: tc.legacy, Features: FeatureGuestCsum | FeatureGuestTSO4}, tc.accept|FeatureGuestCsum|FeatureGuestTSO4)
			// A Linux-style big buffer: header descriptor then the data.
			hdr := alloc(t, d.mem, tc.hdrLen, true)
			data := alloc(t, d.mem, 65550, true)
			d.rx.add(hdr, data)
			small := alloc(t, d.mem, 200, true)
			d.rx.add(small)
			d.notify(QueueRX)
			frame := pattern(40000)
			d.n.Inject(Frame{Data: frame})
			d.n.Sync()
			id, n, ok := d.rx.pop()
			if !ok || id != 0 || int(n) != tc.hdrLen+len(frame) {
				t.Fatalf("used (%d, %d, %v)", id, n, ok)
			}
			if !bytes.Equal(data.b[:len(frame)], frame) {
				t.Fatalf("frame not in the data buffer")
			}
			if tc.hdrLen == HeaderLenMrgBuf {
				if nb := binary.LittleEndian.Uint16(hdr.b[10:]); nb != 1 {
					t.Errorf("num_buffers %d without MRG_RXBUF, want 1", nb)
				}
			}
			// A frame too big for the next chain is dropped and the chain
			// stays posted for the next frame, as in QEMU.
			d.n.Inject(Frame{Data: pattern(1000)})
			d.n.Inject(Frame{Data: pattern(100)})
			d.n.Sync()
			id, n, ok = d.rx.pop()
			if !ok || id != 2 || int(n) != tc.hdrLen+100 {
				t.Fatalf("used (%d, %d, %v), want the small chain with the small frame", id, n, ok)
			}
			if s := d.n.Stats(); s.RxDropTooSmall != 1 {
				t.Errorf("RxDropTooSmall %d", s.RxDropTooSmall)
			}
		})
	}
}

func TestRxHeaderFlagsFollowNegotiatedOffloads(t *testing.T) {
	gsoFrame, cs, co := tcpFrame(tcpSpec{payload: pattern(5000), partial: true, gso: true, flags: 0x18})
	gsoHdr := Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 54, CsumStart: uint16(cs), CsumOffset: uint16(co)}
	csFrame, _, _ := tcpFrame(tcpSpec{payload: pattern(500), partial: true, flags: 0x18})
	csHdr := Header{Flags: HdrNeedsCsum, CsumStart: uint16(cs), CsumOffset: uint16(co)}
	tests := []struct {
		name      string
		accept    uint64
		in        Frame
		wantCount int
		wantFlags uint8
		wantGSO   uint8
	}{
		{"GSO passes whole with GUEST_TSO4", FeatureGuestCsum | FeatureGuestTSO4, Frame{Hdr: gsoHdr, Data: gsoFrame}, 1, HdrNeedsCsum, GSOTCPv4},
		{"GSO is segmented and marked valid with GUEST_CSUM only", FeatureGuestCsum, Frame{Hdr: gsoHdr, Data: gsoFrame}, 4, HdrDataValid, GSONone},
		{"GSO is segmented with plain headers without offloads", 0, Frame{Hdr: gsoHdr, Data: gsoFrame}, 4, 0, GSONone},
		{"a partial checksum passes with GUEST_CSUM", FeatureGuestCsum, Frame{Hdr: csHdr, Data: csFrame}, 1, HdrNeedsCsum, GSONone},
		{"a partial checksum is completed without GUEST_CSUM", 0, Frame{Hdr: csHdr, Data: csFrame}, 1, 0, GSONone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDev(t, Config{Features: FeatureMrgRxbuf | FeatureGuestCsum | FeatureGuestTSO4, QueueSize: 64}, FeatureMrgRxbuf|tc.accept)
			bufs := d.postPages(40, 4096)
			d.notify(QueueRX)
			d.n.Inject(tc.in)
			d.n.Sync()
			count := 0
			for {
				id, n, ok := d.rx.pop()
				if !ok {
					break
				}
				h, _ := parseHeader(bufs[id].b[:n], HeaderLenMrgBuf)
				if h.Flags != tc.wantFlags || h.GSOType != tc.wantGSO {
					t.Errorf("header %+v, want flags %d gso %d", h, tc.wantFlags, tc.wantGSO)
				}
				if h.NumBuffers == 1 && h.Flags&HdrNeedsCsum == 0 {
					checkTCPFrame(t, bufs[id].b[HeaderLenMrgBuf:n])
				}
				for i := 1; i < int(h.NumBuffers); i++ {
					d.rx.pop()
				}
				count++
			}
			if count != tc.wantCount {
				t.Errorf("%d packets received, want %d", count, tc.wantCount)
			}
		})
	}
}

func TestRxHostileNumBuffers(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureMrgRxbuf}, FeatureMrgRxbuf)
	d.n.SetHostile(&Hostile{
		NumBuffers: func(uint16) uint16 { return 7 },
		UsedLen:    func(q int, l uint32) uint32 { return l + 5000 },
	})
	bufs := d.postPages(2, 2048)
	d.notify(QueueRX)
	d.n.Inject(Frame{Data: pattern(100)})
	d.n.Sync()
	_, n, ok := d.rx.pop()
	if !ok || n != 12+100+5000 {
		t.Fatalf("used len %d, want the hostile one", n)
	}
	if nb := binary.LittleEndian.Uint16(bufs[0].b[10:]); nb != 7 {
		t.Fatalf("num_buffers %d, want the hostile 7", nb)
	}
}

func TestRxFilterFollowsControlQueue(t *testing.T) {
	var mac [6]byte
	copy(mac[:], macB)
	d := newTestDev(t, Config{Features: FeatureMrgRxbuf | FeatureCtrlVQ | FeatureCtrlRx | FeatureMAC, MAC: mac}, FeatureMrgRxbuf|FeatureCtrlVQ|FeatureCtrlRx|FeatureMAC)
	if ack := d.ctrl(CtrlClassRx, CtrlRxPromisc, []byte{0}); ack != CtrlOK {
		t.Fatalf("promisc off: ack %d", ack)
	}
	d.postPages(8, 2048)
	d.notify(QueueRX)
	other, _, _ := tcpFrame(tcpSpec{payload: pattern(10)})
	copy(other, "\x02\x99\x99\x99\x99\x99")
	mine, _, _ := tcpFrame(tcpSpec{payload: pattern(10)})
	multi := append([]byte("\x01\x00\x5e\x00\x00\x01"), mine[6:]...)
	d.n.Inject(Frame{Data: other})
	d.n.Inject(Frame{Data: mine})
	d.n.Inject(Frame{Data: multi})
	d.n.Sync()
	if s := d.n.Stats(); s.RxFrames != 1 || s.RxDropFiltered != 2 {
		t.Fatalf("not promiscuous: stats %+v", s)
	}
	if ack := d.ctrl(CtrlClassRx, CtrlRxAllmulti, []byte{1}); ack != CtrlOK {
		t.Fatalf("allmulti on: ack %d", ack)
	}
	d.n.Inject(Frame{Data: multi})
	d.n.Sync()
	if s := d.n.Stats(); s.RxFrames != 2 {
		t.Fatalf("allmulti: stats %+v", s)
	}
	if p, a := d.n.RxMode(); p || !a {
		t.Errorf("RxMode %v %v", p, a)
	}
}

func TestRxMergeableFrameLargerThanTheRingIsDropped(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureMrgRxbuf, QueueSize: 4, RxBacklog: 8}, FeatureMrgRxbuf)
	d.postPages(4, 256)
	d.notify(QueueRX)
	d.n.Inject(Frame{Data: pattern(2000)})
	d.n.Inject(Frame{Data: pattern(100)})
	d.n.Sync()
	if s := d.n.Stats(); s.RxDropTooSmall != 1 || s.RxFrames != 1 {
		t.Fatalf("stats %+v: the big frame must be dropped, not block the small one", s)
	}
}
