package devmodel

import (
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

// ctrl sends one control command and returns the ack.
func (d *testDev) ctrl(class, cmd uint8, data []byte) uint8 {
	d.t.Helper()
	out := alloc(d.t, d.mem, 2+len(data), false)
	out.b[0], out.b[1] = class, cmd
	copy(out.b[2:], data)
	ack := alloc(d.t, d.mem, 1, true)
	ack.b[0] = 0xee
	d.ctl.add(out, ack)
	d.notify(QueueCtrl)
	_, n, ok := d.ctl.pop()
	if !ok || n != 1 {
		d.t.Fatalf("control command not completed: (%d, %v)", n, ok)
	}
	return ack.b[0]
}

func TestCtrlAnnounceAck(t *testing.T) {
	feats := FeatureCtrlVQ | FeatureGuestAnnounce
	d := newTestDev(t, Config{Features: feats}, feats)
	_, cfgIRQ, _ := d.n.Interrupts(3)
	if ack := d.ctrl(CtrlClassAnnounce, CtrlAnnounceAck, nil); ack != CtrlErr {
		t.Errorf("ack without a pending announce: %d, want ERR", ack)
	}
	if !d.n.Announce() {
		t.Fatal("Announce refused")
	}
	waitIRQ(t, cfgIRQ)
	var st [2]byte
	d.n.ReadConfig(ConfigStatus, st[:])
	if st[0]&byte(StatusAnnounce) == 0 {
		t.Fatal("S_ANNOUNCE not set")
	}
	if ack := d.ctrl(CtrlClassAnnounce, CtrlAnnounceAck, nil); ack != CtrlOK {
		t.Errorf("ack: %d, want OK", ack)
	}
	d.n.ReadConfig(ConfigStatus, st[:])
	if st[0]&byte(StatusAnnounce) != 0 {
		t.Fatal("S_ANNOUNCE still set after the ack")
	}
}

func TestCtrlCommandsNeedTheirFeature(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureCtrlVQ | FeatureCtrlRx}, FeatureCtrlVQ)
	if ack := d.ctrl(CtrlClassRx, CtrlRxPromisc, []byte{0}); ack != CtrlErr {
		t.Errorf("RX mode without CTRL_RX: ack %d, want ERR", ack)
	}
	if s := d.n.Stats(); s.CtrlCommands != 1 || s.CtrlErrors != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestCtrlMissingAckBreaksDevice(t *testing.T) {
	d := newTestDev(t, Config{Features: FeatureCtrlVQ}, FeatureCtrlVQ)
	out := alloc(t, d.mem, 2, false)
	d.ctl.add(out)
	d.notify(QueueCtrl)
	if d.n.Status()&virtio.StatusNeedsReset == 0 {
		t.Fatal("device not broken by a command without an ack buffer")
	}
}
