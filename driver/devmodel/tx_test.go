package devmodel

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// capture collects frames a device transmits.
type capture struct {
	mu     sync.Mutex // guards frames
	frames []Frame    // in transmission order
}

func (c *capture) add(f Frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
}

func (c *capture) take() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.frames
	c.frames = nil
	return f
}

// send transmits one packet with header h, as one chain of a header buffer
// and a data buffer (or through an indirect table).
func (d *testDev) send(h Header, frame []byte, indirect bool) uint16 {
	hl := d.n.hdrLenForTest()
	hb := alloc(d.t, d.mem, hl, false)
	h.marshal(hb.b)
	data := alloc(d.t, d.mem, len(frame), false)
	copy(data.b, frame)
	if indirect {
		return d.tx.addIndirect(hb, data)
	}
	return d.tx.add(hb, data)
}

// sendFlat transmits one packet as a single descriptor holding the header
// and the frame, so that a test can keep as many packets in flight as the
// ring has descriptors.
func (d *testDev) sendFlat(h Header, frame []byte) uint16 {
	hl := d.n.hdrLenForTest()
	b := alloc(d.t, d.mem, hl+len(frame), false)
	h.marshal(b.b[:hl])
	copy(b.b[hl:], frame)
	return d.tx.add(b)
}

// hdrLenForTest is hdrLen with the lock held.
func (n *Net) hdrLenForTest() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hdrLen()
}

func TestTxTSOSegmentation(t *testing.T) {
	const mss = 1448
	tests := []struct {
		name     string
		v6       bool
		payload  int
		flags    header.TCPFlags
		ecn      bool
		wantSegs int
		vlan     bool
	}{
		{"TCPv4 10000 bytes make 7 segments", false, 10000, header.TCPFlagAck | header.TCPFlagPsh, false, 7, false},
		{"TCPv6 10000 bytes make 7 segments", true, 10000, header.TCPFlagAck | header.TCPFlagPsh, false, 7, false},
		{"an exact multiple of the MSS", false, 4 * mss, header.TCPFlagAck, false, 4, false},
		{"FIN stays on the last segment only", false, 3000, header.TCPFlagAck | header.TCPFlagFin | header.TCPFlagPsh, false, 3, false},
		{"CWR stays on the first segment only (ECN)", false, 5000, header.TCPFlagAck | header.TCPFlagCwr | header.TCPFlagEce, true, 4, false},
		{"a payload under the MSS is one segment", true, 500, header.TCPFlagAck, false, 1, false},
		{"a VLAN-tagged TCPv4 packet is segmented behind its tag", false, 4000, header.TCPFlagAck, false, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c capture
			feats := FeatureCsum | FeatureHostTSO4 | FeatureHostTSO6 | FeatureHostECN
			d := newTestDev(t, Config{Features: feats, Capture: c.add}, feats|virtio.FeatureVersion1)
			payload := pattern(tc.payload)
			frame, cs, co := tcpFrame(tcpSpec{v6: tc.v6, payload: payload, seq: 1000, flags: tc.flags, ipID: 77, partial: true, gso: true})
			if tc.vlan {
				frame, cs = withVLAN(frame), cs+4
			}
			gt := GSOTCPv4
			if tc.v6 {
				gt = GSOTCPv6
			}
			if tc.ecn {
				gt |= GSOECN
			}
			d.send(Header{Flags: HdrNeedsCsum, GSOType: gt, GSOSize: mss, HdrLen: uint16(cs + 20), CsumStart: uint16(cs), CsumOffset: uint16(co)}, frame, false)
			d.notify(QueueTX)
			segs := c.take()
			if len(segs) != tc.wantSegs {
				t.Fatalf("%d segments, want %d (stats %+v)", len(segs), tc.wantSegs, d.n.Stats())
			}
			var got []byte
			for i, s := range segs {
				if s.Hdr != (Header{}) {
					t.Errorf("segment %d header %+v, want plain", i, s.Hdr)
				}
				if tc.vlan && (len(s.Data) < 14 || s.Data[12] != 0x81) {
					t.Fatalf("segment %d lost its VLAN tag", i)
				}
				p := checkTCPFrame(t, s.Data)
				if want := uint32(1000 + len(got)); p.seq != want {
					t.Errorf("segment %d seq %d, want %d", i, p.seq, want)
				}
				if !tc.v6 && p.ipID != uint16(77+i) {
					t.Errorf("segment %d IP id %d, want %d", i, p.ipID, 77+i)
				}
				if last := i == len(segs)-1; !last && len(p.payload) != mss {
					t.Errorf("segment %d carries %d bytes, want the MSS", i, len(p.payload))
				}
				last := i == len(segs)-1
				wantFlags := tc.flags
				if !last {
					wantFlags &^= header.TCPFlagFin | header.TCPFlagPsh
				}
				if i > 0 {
					wantFlags &^= header.TCPFlagCwr
				}
				if p.flags != wantFlags {
					t.Errorf("segment %d flags %v, want %v", i, p.flags, wantFlags)
				}
				got = append(got, p.payload...)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("segments carry %d bytes that differ from the %d sent", len(got), len(payload))
			}
			if s := d.n.Stats(); s.Segmented != 1 || s.TxFrames != uint64(tc.wantSegs) || s.TxPackets != 1 {
				t.Errorf("stats %+v", s)
			}
			if _, n, ok := d.tx.pop(); !ok || n != 0 {
				t.Errorf("transmit chain not returned with len 0: (%d, %v)", n, ok)
			}
		})
	}
}

func TestTxNeedsCsumIsCompleted(t *testing.T) {
	tests := []struct {
		name     string
		v6       bool
		indirect bool
		capFeat  uint64
		wantHdr  uint8
		payload  int
		pad      int
	}{
		{"TCPv4 checksum completed for a receiver without GUEST_CSUM", false, false, 0, 0, 999, 0},
		{"TCPv6 checksum completed, chain through an indirect table", true, true, 0, 0, 999, 0},
		{"partial checksum passed on to a receiver with GUEST_CSUM", false, false, FeatureGuestCsum, HdrNeedsCsum, 999, 0},
		{"Ethernet padding after the IP packet is not summed", false, false, 0, 0, 1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c capture
			feats := FeatureCsum | uint64(virtio.FeatureIndirectDesc)
			d := newTestDev(t, Config{Features: feats, Capture: c.add, CaptureFeatures: tc.capFeat}, feats)
			frame, cs, co := tcpFrame(tcpSpec{v6: tc.v6, payload: pattern(tc.payload), seq: 5, flags: header.TCPFlagAck, partial: true})
			frame = append(frame, bytes.Repeat([]byte{0xa5}, tc.pad)...)
			d.send(Header{Flags: HdrNeedsCsum, CsumStart: uint16(cs), CsumOffset: uint16(co)}, frame, tc.indirect)
			d.notify(QueueTX)
			got := c.take()
			if len(got) != 1 {
				t.Fatalf("%d frames captured (stats %+v)", len(got), d.n.Stats())
			}
			if got[0].Hdr.Flags != tc.wantHdr {
				t.Fatalf("header flags %d, want %d", got[0].Hdr.Flags, tc.wantHdr)
			}
			if tc.wantHdr == 0 {
				checkTCPFrame(t, got[0].Data)
			} else if !bytes.Equal(got[0].Data, frame) {
				t.Errorf("frame changed on its way to a GUEST_CSUM receiver")
			}
		})
	}
}

func TestTxLegacyHeaderIsTenBytes(t *testing.T) {
	var c capture
	d := newTestDev(t, Config{Legacy: true, Capture: c.add}, 0)
	frame := pattern(60)
	hb := alloc(t, d.mem, HeaderLen, false)
	data := alloc(t, d.mem, len(frame), false)
	copy(data.b, frame)
	d.tx.add(hb, data)
	d.notify(QueueTX)
	got := c.take()
	if len(got) != 1 || !bytes.Equal(got[0].Data, frame) {
		t.Fatalf("captured %d frames; the 10-byte header was not stripped exactly", len(got))
	}
}

func TestTxOffloadNotNegotiatedIsDroppedAndCounted(t *testing.T) {
	frame, cs, co := tcpFrame(tcpSpec{payload: pattern(3000), partial: true, gso: true, flags: header.TCPFlagAck | header.TCPFlagCwr})
	tests := []struct {
		name   string
		accept uint64
		hdr    Header
	}{
		{"NEEDS_CSUM without CSUM", 0, Header{Flags: HdrNeedsCsum, CsumStart: uint16(cs), CsumOffset: uint16(co)}},
		{"TCPv4 GSO without HOST_TSO4", FeatureCsum, Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: uint16(cs), CsumOffset: uint16(co)}},
		{"TCPv6 GSO with only HOST_TSO4", FeatureCsum | FeatureHostTSO4, Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv6, GSOSize: 1000, CsumStart: uint16(cs), CsumOffset: uint16(co)}},
		{"CWR without the ECN bit", FeatureCsum | FeatureHostTSO4, Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: uint16(cs), CsumOffset: uint16(co)}},
		{"the ECN bit without HOST_ECN", FeatureCsum | FeatureHostTSO4, Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4 | GSOECN, GSOSize: 1000, CsumStart: uint16(cs), CsumOffset: uint16(co)}},
		{"csum_offset past the frame", FeatureCsum, Header{Flags: HdrNeedsCsum, CsumStart: uint16(cs), CsumOffset: 5000}},
		{"DATA_VALID on transmit", FeatureCsum, Header{Flags: HdrDataValid}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c capture
			d := newTestDev(t, Config{Features: FeatureCsum | FeatureHostTSO4, Capture: c.add}, tc.accept)
			d.send(tc.hdr, frame, false)
			d.notify(QueueTX)
			if got := c.take(); len(got) != 0 {
				t.Fatalf("%d frames went out", len(got))
			}
			s := d.n.Stats()
			if s.TxHeaderErrors != 1 || s.DriverErrors != 0 {
				t.Fatalf("stats %+v", s)
			}
			if _, _, ok := d.tx.pop(); !ok {
				t.Errorf("the chain was not returned")
			}
		})
	}
}

func TestBadChainsBreakTheDevice(t *testing.T) {
	tests := []struct {
		name  string
		build func(d *testDev)
		want  error
	}{
		{"head out of range", func(d *testDev) { d.tx.publish(uint16(d.tx.size)) }, ErrHeadRange},
		{"next out of range", func(d *testDev) {
			b := alloc(d.t, d.mem, 64, false)
			d.tx.writeDesc(d.tx.ring, 0, b.phys, 64, descFNext, 999)
			d.tx.publish(0)
		}, ErrNextRange},
		{"a loop", func(d *testDev) {
			b := alloc(d.t, d.mem, 64, false)
			d.tx.writeDesc(d.tx.ring, 0, b.phys, 64, descFNext, 1)
			d.tx.writeDesc(d.tx.ring, 1, b.phys, 64, descFNext, 0)
			d.tx.publish(0)
		}, ErrLoop},
		{"a zero-length buffer", func(d *testDev) {
			b := alloc(d.t, d.mem, 64, false)
			d.tx.writeDesc(d.tx.ring, 0, b.phys, 0, 0, 0)
			d.tx.publish(0)
		}, ErrZeroLength},
		{"an address outside memory", func(d *testDev) {
			d.tx.writeDesc(d.tx.ring, 0, 0x1000, 64, 0, 0)
			d.tx.publish(0)
		}, ErrBadAddress},
		{"readable after writable", func(d *testDev) {
			d.tx.add(alloc(d.t, d.mem, 64, true), alloc(d.t, d.mem, 64, false))
		}, ErrOrder},
		{"indirect without the feature", func(d *testDev) {
			d.tx.addIndirect(alloc(d.t, d.mem, 64, false))
		}, ErrIndirectFeature},
		{"avail.idx too far ahead", func(d *testDev) {
			store16(d.tx.ring[d.tx.availOff:], 2, uint16(d.tx.size+1))
		}, ErrAvailIdx},
		{"a transmit chain shorter than the header", func(d *testDev) {
			d.tx.add(alloc(d.t, d.mem, 4, false))
		}, ErrHeaderTooShort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDev(t, Config{}, virtio.FeatureVersion1)
			_, cfgIRQ, _ := d.n.Interrupts(2)
			tc.build(d)
			d.notify(QueueTX)
			s := d.n.Stats()
			var de *DriverError
			if !errors.Is(s.LastError, tc.want) || !errors.As(s.LastError, &de) || s.DriverErrors != 1 {
				t.Fatalf("last error %v, want %v (stats %+v)", s.LastError, tc.want, s)
			}
			if d.n.Status()&virtio.StatusNeedsReset == 0 {
				t.Errorf("status %#x lacks NEEDS_RESET", d.n.Status())
			}
			waitIRQ(t, cfgIRQ)
			d.n.Reset()
			if d.n.Status() != 0 {
				t.Errorf("status %#x after reset", d.n.Status())
			}
		})
	}
}

func TestTxGSOPassesWholeToACaptureThatTakesIt(t *testing.T) {
	var c capture
	feats := FeatureCsum | FeatureHostTSO6
	d := newTestDev(t, Config{Features: feats, Capture: c.add, CaptureFeatures: FeatureGuestCsum | FeatureGuestTSO6}, feats)
	frame, cs, co := tcpFrame(tcpSpec{v6: true, payload: pattern(20000), flags: header.TCPFlagAck, partial: true, gso: true})
	h := Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv6, GSOSize: 1440, HdrLen: uint16(cs + 20), CsumStart: uint16(cs), CsumOffset: uint16(co)}
	d.send(h, frame, false)
	d.notify(QueueTX)
	got := c.take()
	if len(got) != 1 || got[0].Hdr != h || !bytes.Equal(got[0].Data, frame) {
		t.Fatalf("captured %d frames; want the GSO packet whole with its header", len(got))
	}
	if s := d.n.Stats(); s.Segmented != 0 {
		t.Errorf("stats %+v", s)
	}
}
