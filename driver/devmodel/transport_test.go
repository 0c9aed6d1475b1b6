package devmodel

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
)

func TestFeaturesOKNegotiation(t *testing.T) {
	offered := FeatureCsum | FeatureGuestCsum | FeatureHostTSO4 | FeatureGuestTSO4 | FeatureMrgRxbuf | virtio.FeatureEventIdx
	const v1 = virtio.FeatureVersion1
	tests := []struct {
		name   string
		accept uint64
		wantOK bool
	}{
		{"a subset of what is offered is accepted", FeatureCsum | FeatureMrgRxbuf | v1, true},
		{"VERSION_1 alone is accepted", v1, true},
		{"a modern driver without VERSION_1 is refused", FeatureMrgRxbuf, false},
		{"a feature not offered is refused", FeatureMrgRxbuf | FeatureStatus | v1, false},
		{"a transport feature not offered is refused", virtio.FeatureIndirectDesc | v1, false},
		{"GUEST_TSO4 without GUEST_CSUM is refused", FeatureGuestTSO4 | v1, false},
		{"HOST_TSO4 without CSUM is refused", FeatureHostTSO4 | v1, false},
		{"HOST_TSO4 with CSUM is accepted", FeatureHostTSO4 | FeatureCsum | v1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(Config{Mem: &virtqueue.HeapDMA{}, Features: offered})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			n.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			n.SetDriverFeatures(tc.accept)
			n.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusFeaturesOK)
			gotOK := n.Status()&virtio.StatusFeaturesOK != 0
			if gotOK != tc.wantOK {
				t.Fatalf("FEATURES_OK reads back %v, want %v", gotOK, tc.wantOK)
			}
			if s := n.Stats(); !tc.wantOK && (s.FeatureRejections != 1 || !errors.Is(s.LastError, ErrFeatureViolation)) {
				t.Errorf("rejection not counted: %+v", s)
			}
			if tc.wantOK && n.Features() != tc.accept {
				t.Errorf("features in force %#x, want %#x", n.Features(), tc.accept)
			}
		})
	}
}

func TestDeviceFeaturesByTransport(t *testing.T) {
	offered := FeatureMAC | FeatureMrgRxbuf | virtio.FeatureEventIdx | virtio.FeatureAccessPlatform
	tests := []struct {
		name   string
		legacy bool
		want   uint64
	}{
		{"a modern device always offers VERSION_1", false, offered | virtio.FeatureVersion1},
		{"a legacy device exposes only 32 bits", true, FeatureMAC | FeatureMrgRxbuf | virtio.FeatureEventIdx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(Config{Mem: &virtqueue.HeapDMA{}, Features: offered, Legacy: tc.legacy})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if got := n.DeviceFeatures(); got != tc.want {
				t.Errorf("DeviceFeatures %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestDriverOKWithoutFeaturesOKBreaksModernDevice(t *testing.T) {
	n, err := New(Config{Mem: &virtqueue.HeapDMA{}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.SetStatus(virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK)
	if n.Status()&virtio.StatusNeedsReset == 0 {
		t.Fatalf("status %#x lacks NEEDS_RESET", n.Status())
	}
	if err := n.Reset(); err != nil || n.Status() != 0 {
		t.Fatalf("reset: %v, status %#x", err, n.Status())
	}
}

func TestConfigSpaceLayout(t *testing.T) {
	mac := [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	n, err := New(Config{Mem: &virtqueue.HeapDMA{}, Features: FeatureMAC | FeatureMTU | FeatureStatus, MAC: mac, MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var c [12]byte
	n.ReadConfig(0, c[:])
	if [6]byte(c[:6]) != mac {
		t.Errorf("mac %x", c[:6])
	}
	if st := binary.LittleEndian.Uint16(c[6:]); st != StatusLinkUp {
		t.Errorf("status %#x, want link up", st)
	}
	if p := binary.LittleEndian.Uint16(c[8:]); p != 1 {
		t.Errorf("max_virtqueue_pairs %d", p)
	}
	var mtu [2]byte
	n.ReadConfig(ConfigMTU, mtu[:])
	if m := binary.LittleEndian.Uint16(mtu[:]); m != 9000 {
		t.Errorf("mtu at offset 10 is %d, want 9000", m)
	}
	// Modern config is read-only.
	n.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6})
	if n.MAC() != mac {
		t.Errorf("modern device let the driver write the MAC")
	}
}

func TestLegacyMACIsWritable(t *testing.T) {
	n, err := New(Config{Mem: &virtqueue.HeapDMA{}, Legacy: true, Features: FeatureMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.WriteConfig(2, []byte{0xaa, 0xbb})
	if m := n.MAC(); m[2] != 0xaa || m[3] != 0xbb {
		t.Errorf("mac %x", m)
	}
}

func TestLinkChangeRaisesConfigInterrupt(t *testing.T) {
	tests := []struct {
		name    string
		accept  uint64
		wantIRQ bool
	}{
		{"with STATUS negotiated a link change interrupts", FeatureStatus, true},
		{"without STATUS no interrupt is sent", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDev(t, Config{Features: FeatureStatus}, tc.accept)
			_, cfgIRQ, err := d.n.Interrupts(2)
			if err != nil {
				t.Fatal(err)
			}
			d.n.SetLink(false)
			if got := pendingIRQ(cfgIRQ); got != tc.wantIRQ {
				t.Fatalf("config interrupt %v, want %v", got, tc.wantIRQ)
			}
			var st [2]byte
			d.n.ReadConfig(ConfigStatus, st[:])
			if binary.LittleEndian.Uint16(st[:])&StatusLinkUp != 0 {
				t.Errorf("link still reads up")
			}
			d.n.SetLink(true)
			if got := pendingIRQ(cfgIRQ); got != tc.wantIRQ {
				t.Fatalf("config interrupt on link up %v, want %v", got, tc.wantIRQ)
			}
			if want := map[bool]uint64{true: 2, false: 0}[tc.wantIRQ]; d.n.Stats().ConfigInterrupts != want {
				t.Errorf("ConfigInterrupts %d, want %d", d.n.Stats().ConfigInterrupts, want)
			}
		})
	}
}

func TestInterruptRaisedWhileNobodyWaitsIsKept(t *testing.T) {
	i := newInterrupt()
	i.fire()
	i.fire()
	if !pendingIRQ(i) {
		t.Fatal("interrupt lost")
	}
	if pendingIRQ(i) {
		t.Fatal("two interrupts raised before a Wait should merge into one")
	}
}

func TestSetupQueueChecksLegacyLayout(t *testing.T) {
	mem := &virtqueue.HeapDMA{}
	n, err := New(Config{Mem: mem, Legacy: true, QueueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	q := newTestQueue(t, mem, 64)
	desc, avail, used := q.addrs()
	tests := []struct {
		name              string
		size              int
		desc, avail, used uint64
		ok                bool
	}{
		{"the contiguous layout is accepted", 64, desc, avail, used, true},
		{"a size other than the device's is refused", 32, desc, desc + 16*32, used, false},
		{"a used ring not at the next 4096 boundary is refused", 64, desc, avail, used + 4096, false},
		{"an avail ring not right after the table is refused", 64, desc, avail + 16, used, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := n.SetupQueue(QueueRX, tc.size, tc.desc, tc.avail, tc.used)
			if (err == nil) != tc.ok {
				t.Fatalf("SetupQueue: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
