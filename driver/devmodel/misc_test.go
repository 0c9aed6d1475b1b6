package devmodel

import (
	"encoding/binary"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

func TestInjectRawKeepsTheHeaderWhateverWasNegotiated(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureMrgRxbuf}, FeatureMrgRxbuf)
	bufs := d.postPages(2, 2048)
	d.notify(QueueRX)
	d.n.InjectRaw(Frame{Hdr: Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 34, CsumOffset: 16}, Data: pattern(200)})
	d.n.Sync()
	id, n, ok := d.rx.pop()
	if !ok {
		t.Fatal("nothing received")
	}
	h, _ := parseHeader(bufs[id].b[:n], HeaderLenMrgBuf)
	want := Header{Flags: HdrNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 34, CsumOffset: 16, NumBuffers: 1}
	if h != want {
		t.Errorf("header %+v, want %+v", h, want)
	}
}

func TestHostileUsedID(t *testing.T) {
	d := newTestDev(t, Config{}, 0)
	d.n.SetHostile(&Hostile{UsedID: func(q int, id uint32) uint32 { return 0xdead }})
	d.sendOne()
	if id, _, ok := d.tx.pop(); !ok || id != 0xdead {
		t.Errorf("used id %#x, want the hostile one", id)
	}
	d.n.SetHostile(nil)
	d.sendOne()
	if id, _, ok := d.tx.pop(); !ok || id != 2 {
		t.Errorf("used id %#x after SetHostile(nil), want 2", id)
	}
}

func TestLinkDownDropsBothWays(t *testing.T) {
	var c capture
	d := newTestDev(t, Config{Features: FeatureStatus | FeatureMrgRxbuf, Capture: c.add}, FeatureStatus|FeatureMrgRxbuf)
	d.postPages(2, 2048)
	d.notify(QueueRX)
	d.n.SetLink(false)
	d.sendOne()
	d.n.Inject(Frame{Data: pattern(100)})
	d.n.Sync()
	s := d.n.Stats()
	if len(c.take()) != 0 || s.TxDropLinkDown != 1 || s.RxDropLinkDown != 1 || s.RxFrames != 0 {
		t.Fatalf("stats %+v", s)
	}
	if _, _, ok := d.tx.pop(); !ok {
		t.Error("transmit chain not returned while the link is down")
	}
}

func TestResetForgetsQueues(t *testing.T) {
	d := newTestDev(t, Config{}, 0)
	d.n.Reset()
	d.send(Header{}, pattern(60), false)
	d.notify(QueueTX)
	if d.tx.usedIdx() != 0 {
		t.Fatal("device processed a queue after reset")
	}
	if d.n.Features() != 0 || d.n.Status() != 0 {
		t.Errorf("features %#x status %#x after reset", d.n.Features(), d.n.Status())
	}
}

func TestCtrlGuestOffloadsSetNarrowsReceiveOffloads(t *testing.T) {
	feats := FeatureCtrlVQ | FeatureCtrlGuestOffload | FeatureGuestCsum | FeatureMrgRxbuf
	d := newTestDev(t, Config{Features: feats}, feats)
	var off [8]byte
	binary.LittleEndian.PutUint64(off[:], FeatureGuestTSO4)
	if ack := d.ctrl(CtrlClassGuestOffloads, CtrlGuestOffloadsSet, off[:]); ack != CtrlErr {
		t.Errorf("enabling an offload that was not negotiated: ack %d", ack)
	}
	binary.LittleEndian.PutUint64(off[:], 0)
	if ack := d.ctrl(CtrlClassGuestOffloads, CtrlGuestOffloadsSet, off[:]); ack != CtrlOK {
		t.Fatalf("disabling offloads: ack %d", ack)
	}
	frame, cs, co := tcpFrame(tcpSpec{payload: pattern(100), partial: true, flags: 0x10})
	bufs := d.postPages(2, 2048)
	d.notify(QueueRX)
	d.n.Inject(Frame{Hdr: Header{Flags: HdrNeedsCsum, CsumStart: uint16(cs), CsumOffset: uint16(co)}, Data: frame})
	d.n.Sync()
	id, n, ok := d.rx.pop()
	if !ok {
		t.Fatal("nothing received")
	}
	if h, _ := parseHeader(bufs[id].b[:n], HeaderLenMrgBuf); h.Flags != 0 {
		t.Errorf("flags %d with GUEST_CSUM switched off, want a completed checksum", h.Flags)
	}
	checkTCPFrame(t, bufs[id].b[HeaderLenMrgBuf:n])
}

func TestNotifyBeforeDriverOKIsProcessedAtDriverOK(t *testing.T) {
	mem := newTestMem()
	n, err := New(Config{Mem: mem, QueueSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
	n.SetDriverFeatures(virtio.FeatureVersion1)
	st := virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusFeaturesOK
	n.SetStatus(st)
	d := &testDev{t: t, mem: mem, n: n}
	d.rx = d.setup(QueueRX)
	d.tx = d.setup(QueueTX)
	d.send(Header{}, pattern(60), false)
	d.notify(QueueTX)
	if d.tx.usedIdx() != 0 {
		t.Fatal("processed before DRIVER_OK")
	}
	n.SetStatus(st | virtio.StatusDriverOK)
	n.Sync()
	if d.tx.usedIdx() != 1 {
		t.Fatal("chain made available before DRIVER_OK not processed after it")
	}
}

func TestHostileUsedIdxSkew(t *testing.T) {
	d := newTestDev(t, Config{}, 0)
	d.n.SetHostile(&Hostile{UsedIdxSkew: func(q int) uint16 { return 3 }})
	d.sendOne()
	if got := d.tx.usedIdx(); got != 4 {
		t.Errorf("used.idx %d after one chain, want 1+3", got)
	}
}

func TestMTUIsEnforcedBothWays(t *testing.T) {
	var c capture
	feats := FeatureMTU | FeatureMrgRxbuf
	d := newTestDev(t, Config{Features: feats, MTU: 1000, Capture: c.add}, feats)
	d.postPages(4, 4096)
	d.notify(QueueRX)
	d.n.Inject(Frame{Data: pattern(1000 + 14)})
	d.n.Inject(Frame{Data: pattern(1000 + 19)})
	d.send(Header{}, pattern(1000+18), false)
	d.send(Header{}, pattern(1000+19), false)
	d.notify(QueueTX)
	s := d.n.Stats()
	if s.RxFrames != 1 || s.RxDropTooBig != 1 {
		t.Errorf("receive: stats %+v", s)
	}
	if got := len(c.take()); got != 1 || s.TxHeaderErrors != 1 {
		t.Errorf("transmit: %d frames out, stats %+v", got, s)
	}
}
