package virtiopci_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

const (
	featMAC  = 1 << 5
	featMRG  = 1 << 15
	featHigh = 1 << 63
	v1       = virtio.FeatureVersion1
)

var (
	legacyOnly   = layout{deviceID: legacyDevice, legacyBAR: true}
	modernOnly   = layout{deviceID: netDevice, modernCaps: true, multiplier: 4}
	transitional = layout{deviceID: legacyDevice, legacyBAR: true, modernCaps: true, multiplier: 4}
)

// netConfig is a virtio-net configuration: MAC, status, max pairs, MTU.
func netConfig() []byte {
	return []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x01, 0x00, 0x01, 0x00, 0xDC, 0x05}
}

// open builds a machine for l and opens the transport on it.
func open(t *testing.T, l layout, d *fakeDev, o virtiopci.Options, p virtiopci.Platform) (*fakeMachine, *virtiopci.Transport) {
	t.Helper()
	fm := newFakeMachine(l, d)
	p.IO, p.Mapper = fm.m, fm.m
	tr, err := virtiopci.Open(fm.pdev, p, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if f := fm.m.Faults(); len(f) != 0 {
			t.Errorf("machine faults: %q", f)
		}
		if b := d.badAccesses(); len(b) != 0 {
			t.Errorf("accesses the device does not allow: %q", b)
		}
	})
	return fm, tr
}

func TestOpenChoosesInterface(t *testing.T) {
	tests := []struct {
		name       string
		l          layout
		o          virtiopci.Options
		wantLegacy bool
	}{
		{"legacy-only device uses the I/O BAR", legacyOnly, virtiopci.Options{}, true},
		{"modern device uses the capabilities", modernOnly, virtiopci.Options{}, false},
		{"transitional device uses modern", transitional, virtiopci.Options{}, false},
		{"transitional device forced legacy", transitional, virtiopci.Options{ForceLegacy: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1|featMAC, netConfig(), 256, 256)
			fm, tr := open(t, tt.l, d, tt.o, virtiopci.Platform{})
			if tr.Legacy() != tt.wantLegacy {
				t.Fatalf("Legacy() = %v", tr.Legacy())
			}
			if tr.NumQueues() != 2 {
				t.Errorf("NumQueues = %d, want 2", tr.NumQueues())
			}
			if c := fm.pdev.Command(); c&(pci.CommandBusMaster|pci.CommandMemory|pci.CommandIO) != pci.CommandBusMaster|pci.CommandMemory|pci.CommandIO {
				t.Errorf("command = %#x: decoding and bus mastering must be on", c)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name string
		l    layout
		o    virtiopci.Options
		want error
	}{
		{"modern device forced legacy has no legacy interface", modernOnly, virtiopci.Options{ForceLegacy: true}, virtiopci.ErrBadDevice},
		{"missing notification capability", layout{deviceID: netDevice, modernCaps: true, caps: []pcitest.Cap{
			virtioCap(1, 4, commonAt, structSize), virtioCap(3, 4, isrAt, structSize)}}, virtiopci.Options{}, virtiopci.ErrBadDevice},
		{"common configuration past its BAR", layout{deviceID: netDevice, modernCaps: true, caps: []pcitest.Cap{
			virtioCap(1, 4, bar4Size-0x10, structSize), virtioCap(3, 4, isrAt, structSize), virtioCap(2, 4, notifyAt, structSize, 4)}}, virtiopci.Options{}, pci.ErrOutOfRange},
		{"common configuration too short", layout{deviceID: netDevice, modernCaps: true, caps: []pcitest.Cap{
			virtioCap(1, 4, commonAt, 0x20), virtioCap(3, 4, isrAt, structSize), virtioCap(2, 4, notifyAt, structSize, 4)}}, virtiopci.Options{}, virtiopci.ErrBadDevice},
		{"odd notify multiplier", layout{deviceID: netDevice, modernCaps: true, multiplier: 3}, virtiopci.Options{}, virtiopci.ErrBadDevice},
		{"notification capability too short for the multiplier", layout{deviceID: netDevice, modernCaps: true, caps: []pcitest.Cap{
			virtioCap(1, 4, commonAt, structSize), virtioCap(3, 4, isrAt, structSize), virtioCap(2, 4, notifyAt, structSize)}}, virtiopci.Options{}, virtiopci.ErrBadDevice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256)
			fm := newFakeMachine(tt.l, d)
			_, err := virtiopci.Open(fm.pdev, virtiopci.Platform{IO: fm.m, Mapper: fm.m}, tt.o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenSkipsBadCapabilityForALaterGoodOne(t *testing.T) {
	l := layout{deviceID: netDevice, modernCaps: true, caps: []pcitest.Cap{
		virtioCap(1, 7, commonAt, structSize),    // reserved BAR: ignored
		virtioCap(1, 4, bar4Size-8, structSize),  // outside the BAR: skipped
		virtioCap(9, 4, commonAt, structSize),    // unknown type: ignored
		virtioCap(1, 4, commonAt, structSize),    // first usable
		virtioCap(3, 4, isrAt, structSize),       //
		virtioCap(2, 4, notifyAt, structSize, 4), //
		virtioCap(1, 4, notifyAt, structSize),    // second common: not used
		virtioCap(4, 4, deviceAt, uint32(len(netConfig()))),
	}}
	d := newFakeDev(v1|featMAC, netConfig(), 256, 256)
	_, tr := open(t, l, d, virtiopci.Options{}, virtiopci.Platform{})
	if tr.Legacy() || tr.NumQueues() != 2 {
		t.Fatalf("Legacy %v NumQueues %d", tr.Legacy(), tr.NumQueues())
	}
}

func TestFeatureWindows(t *testing.T) {
	offered := uint64(v1 | featMAC | featMRG | 1<<31 | virtio.FeatureRingPacked | featHigh)
	tests := []struct {
		name        string
		l           layout
		wantOffered uint64
		accept      uint64
		wantWritten uint64
	}{
		{"modern: both 32-bit windows", modernOnly, offered, v1 | featMRG | 1<<31 | featHigh, v1 | featMRG | 1<<31 | featHigh},
		{"legacy: one 32-bit register", legacyOnly, offered & 0xFFFFFFFF, featMRG | 1<<31 | featHigh, featMRG | 1<<31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(offered, netConfig(), 256)
			_, tr := open(t, tt.l, d, virtiopci.Options{}, virtiopci.Platform{})
			if got := tr.DeviceFeatures(); got != tt.wantOffered {
				t.Fatalf("DeviceFeatures = %#x, want %#x", got, tt.wantOffered)
			}
			tr.SetDriverFeatures(tt.accept)
			if d.driverFeatures != tt.wantWritten {
				t.Fatalf("device got %#x, want %#x", d.driverFeatures, tt.wantWritten)
			}
		})
	}
}

func TestNegotiateOverTransport(t *testing.T) {
	for _, tt := range []struct {
		name   string
		l      layout
		reject bool
		want   uint64
		err    error
	}{
		{"modern", modernOnly, false, v1 | featMAC, nil},
		{"legacy", legacyOnly, false, featMAC, nil},
		{"modern device refusing the features", modernOnly, true, 0, virtio.ErrFeaturesRejected},
		{"legacy has no FEATURES_OK to refuse", legacyOnly, true, featMAC, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1|featMAC|featMRG, netConfig(), 256)
			d.rejectFeaturesOK = tt.reject
			_, tr := open(t, tt.l, d, virtiopci.Options{}, virtiopci.Platform{})
			got, err := virtio.Negotiate(tr, v1|featMAC, ^uint64(0))
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("Negotiate = %#x, %v; want %#x, %v", got, err, tt.want, tt.err)
			}
			if err == nil {
				if err := virtio.DriverOK(tr); err != nil {
					t.Fatal(err)
				}
				if d.status&virtio.StatusDriverOK == 0 {
					t.Fatalf("status %#x", d.status)
				}
			} else if d.status&virtio.StatusFailed == 0 {
				t.Fatalf("status %#x: FAILED not set", d.status)
			}
		})
	}
}

func TestResetWaitsForZeroAndTimesOut(t *testing.T) {
	d := newFakeDev(v1, netConfig(), 256)
	_, tr := open(t, modernOnly, d, virtiopci.Options{ResetTimeout: 5 * time.Millisecond}, virtiopci.Platform{})
	tr.SetStatus(virtio.StatusAcknowledge)
	if err := tr.Reset(); err != nil || tr.Status() != 0 {
		t.Fatalf("Reset = %v, status %#x", err, tr.Status())
	}
	tr.SetStatus(virtio.StatusAcknowledge)
	d.stuckReset = true
	if err := tr.Reset(); !errors.Is(err, virtiopci.ErrResetTimeout) {
		t.Fatalf("stuck device: Reset = %v, want ErrResetTimeout", err)
	}
}

func TestModernQueueSetupAndNotifyAddress(t *testing.T) {
	tests := []struct {
		name       string
		multiplier uint32
		notifyOffs []uint16
		wantAt     []uint64 // notification offsets per queue
	}{
		{"multiplier 4, offsets in queue order", 4, []uint16{0, 1, 2}, []uint64{0, 4, 8}},
		{"multiplier 4, device-chosen offsets", 4, []uint16{3, 0, 7}, []uint64{12, 0, 28}},
		{"page per queue", 0x400, []uint16{0, 1, 2}, []uint64{0, 0x400, 0x800}},
		{"multiplier 0: one address for every queue", 0, []uint16{5, 9, 1}, []uint64{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256, 256, 64)
			for i, o := range tt.notifyOffs {
				d.queues[i].notifyOff = o
			}
			l := modernOnly
			l.multiplier = tt.multiplier
			_, tr := open(t, l, d, virtiopci.Options{}, virtiopci.Platform{})
			if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
				t.Fatal(err)
			}
			for q := 0; q < 3; q++ {
				base := uint64(0x10_0000_0000) + uint64(q)<<16 // above 4 GiB: both halves matter
				if err := tr.SetupQueue(q, 64, base, base+0x400, base+0x1000); err != nil {
					t.Fatalf("SetupQueue(%d): %v", q, err)
				}
				s := d.snapshot(q)
				if s.size != 64 || s.desc != base || s.driver != base+0x400 || s.device != base+0x1000 || s.enable != 1 {
					t.Fatalf("queue %d registers %+v", q, s)
				}
			}
			for q := 2; q >= 0; q-- {
				tr.Notify(q)
			}
			want := [][2]uint64{{tt.wantAt[2], 2}, {tt.wantAt[1], 1}, {tt.wantAt[0], 0}}
			if !slices.Equal(d.notifies, want) {
				t.Fatalf("notifications %#x, want %#x", d.notifies, want)
			}
		})
	}
}

func TestModernQueueSetupRejects(t *testing.T) {
	tests := []struct {
		name              string
		q, size           int
		desc, avail, used uint64
		notifyOff         uint16
		enabled           bool
		want              error
	}{
		{name: "size not a power of two", size: 100, desc: 0x1000, avail: 0x2000, used: 0x3000, want: virtiopci.ErrBadQueue},
		{name: "size above the device maximum", size: 512, desc: 0x1000, avail: 0x2000, used: 0x3000, want: virtiopci.ErrBadQueue},
		{name: "queue the device does not have", q: 1, size: 64, desc: 0x1000, avail: 0x2000, used: 0x3000, want: virtiopci.ErrBadQueue},
		{name: "queue index past NumQueues", q: 7, size: 64, desc: 0x1000, avail: 0x2000, used: 0x3000, want: virtiopci.ErrBadQueue},
		{name: "misaligned descriptor table", size: 64, desc: 0x1008, avail: 0x2000, used: 0x3000, want: virtiopci.ErrBadQueue},
		{name: "misaligned used ring", size: 64, desc: 0x1000, avail: 0x2000, used: 0x3002, want: virtiopci.ErrBadQueue},
		{name: "notify offset past the notification structure", size: 64, desc: 0x1000, avail: 0x2000, used: 0x3000, notifyOff: 0x400, want: virtiopci.ErrBadDevice},
		{name: "queue already enabled", size: 64, desc: 0x1000, avail: 0x2000, used: 0x3000, enabled: true, want: virtiopci.ErrBadQueue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256, 0)
			d.queues[0].notifyOff = tt.notifyOff
			_, tr := open(t, modernOnly, d, virtiopci.Options{}, virtiopci.Platform{})
			if tt.enabled {
				d.queues[0].enable = 1
			}
			if err := tr.SetupQueue(tt.q, tt.size, tt.desc, tt.avail, tt.used); !errors.Is(err, tt.want) {
				t.Fatalf("SetupQueue err = %v, want %v", err, tt.want)
			}
			if tt.q == 0 && !tt.enabled && d.snapshot(0).enable != 0 {
				t.Fatal("queue enabled despite the error")
			}
			tr.Notify(0)
			if len(d.notifies) != 0 || tr.Stats().NotifyBadQueue != 1 {
				t.Fatalf("notify of a queue not set up: notifications %v, counted %d", d.notifies, tr.Stats().NotifyBadQueue)
			}
		})
	}
}

func TestLegacyQueueSetup(t *testing.T) {
	const size = 256
	desc := uint64(0x12345000)
	avail := desc + 16*size
	used := (avail + 6 + 2*size + 4095) &^ 4095
	tests := []struct {
		name              string
		size              int
		desc, avail, used uint64
		want              error
	}{
		{"contiguous layout", size, desc, avail, used, nil},
		{"size other than the device's", 128, desc, desc + 16*128, (desc + 16*128 + 6 + 256 + 4095) &^ 4095, virtiopci.ErrBadQueue},
		{"descriptor table not page aligned", size, desc + 0x10, avail + 0x10, used, virtiopci.ErrBadQueue},
		{"available ring not right after the table", size, desc, avail + 2, used, virtiopci.ErrBadQueue},
		{"used ring not at the next page", size, desc, avail, used + 4096, virtiopci.ErrBadQueue},
		{"page number past 32 bits", size, 1 << 44, 1<<44 + 16*size, (1<<44 + 16*size + 6 + 2*size + 4095) &^ 4095, virtiopci.ErrBadQueue},
		{"page zero", size, 0, 16 * size, (16*size + 6 + 2*size + 4095) &^ 4095, virtiopci.ErrBadQueue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(0, netConfig(), size, size)
			_, tr := open(t, legacyOnly, d, virtiopci.Options{}, virtiopci.Platform{})
			if tr.QueueMaxSize(1) != size || tr.QueueMaxSize(2) != 0 {
				t.Fatalf("QueueMaxSize = %d, %d", tr.QueueMaxSize(1), tr.QueueMaxSize(2))
			}
			err := tr.SetupQueue(1, tt.size, tt.desc, tt.avail, tt.used)
			if !errors.Is(err, tt.want) {
				t.Fatalf("SetupQueue err = %v, want %v", err, tt.want)
			}
			if err == nil {
				if pfn := d.snapshot(1).pfn; pfn != uint32(tt.desc>>12) {
					t.Fatalf("PFN %#x, want %#x", pfn, tt.desc>>12)
				}
				tr.Notify(1)
				if want := [][2]uint64{{16, 1}}; !slices.Equal(d.notifies, want) {
					t.Fatalf("notifications %v, want %v", d.notifies, want)
				}
			} else if d.snapshot(1).pfn != 0 {
				t.Fatal("PFN written despite the error")
			}
		})
	}
}

func TestReadConfig(t *testing.T) {
	for _, l := range []struct {
		name string
		l    layout
		// size is the device configuration the transport can see: the
		// legacy layout has no size but the BAR's.
		size int
	}{{"legacy", legacyOnly, bar0Size - 20}, {"modern", modernOnly, len(netConfig())}} {
		t.Run(l.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256)
			_, tr := open(t, l.l, d, virtiopci.Options{}, virtiopci.Platform{})
			mac := make([]byte, 6)
			tr.ReadConfig(0, mac)
			if !bytes.Equal(mac, netConfig()[:6]) {
				t.Fatalf("MAC % x", mac)
			}
			mtu := make([]byte, 2)
			tr.ReadConfig(10, mtu)
			if mtu[0] != 0xDC || mtu[1] != 0x05 {
				t.Fatalf("MTU % x", mtu)
			}
			word := make([]byte, 4)
			tr.ReadConfig(8, word)
			want := []int{1, 1, 1, 1, 1, 1, 2, 4}
			if tr.Legacy() {
				// Read twice to catch a change without a generation.
				want = []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 4, 4}
			}
			if !slices.Equal(d.configAccesses, want) {
				t.Fatalf("access widths %v, want %v (bytes for the MAC, natural width otherwise)", d.configAccesses, want)
			}
			tr.WriteConfig(6, []byte{0x03, 0x00})
			if d.config[6] != 3 {
				t.Fatalf("WriteConfig did not land: % x", d.config)
			}
			past := []byte{9, 9, 9, 9}
			tr.ReadConfig(l.size-2, past)
			if !bytes.Equal(past, make([]byte, 4)) || tr.Stats().ConfigOutOfRange != 1 {
				t.Fatalf("read past the config: % x, counted %d", past, tr.Stats().ConfigOutOfRange)
			}
		})
	}
}

func TestReadConfigRetriesWhileTheConfigChanges(t *testing.T) {
	tests := []struct {
		name         string
		l            layout
		bumps        int
		wantRetries  uint64
		wantUnstable uint64
	}{
		{"modern: stable", modernOnly, 0, 0, 0},
		{"modern: generation changed during one read", modernOnly, 1, 1, 0},
		{"modern: generation changed during three reads", modernOnly, 3, 3, 0},
		{"modern: never stable, gives up, no hang", modernOnly, 1 << 20, 8, 1},
		{"legacy: stable", legacyOnly, 0, 0, 0},
		{"legacy: a change between the two reads", legacyOnly, 2, 1, 0},
		{"legacy: changes between two pairs of reads", legacyOnly, 4, 2, 0},
		{"legacy: never stable, gives up, no hang", legacyOnly, 1 << 20, 8, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256)
			_, tr := open(t, tt.l, d, virtiopci.Options{MaxConfigRetries: 8}, virtiopci.Platform{})
			d.genBumps = tt.bumps
			b := make([]byte, 4) // one 32-bit access per attempt
			tr.ReadConfig(0, b)
			st := tr.Stats()
			if st.ConfigRetries != tt.wantRetries || st.ConfigUnstable != tt.wantUnstable {
				t.Fatalf("retries %d unstable %d, want %d %d", st.ConfigRetries, st.ConfigUnstable, tt.wantRetries, tt.wantUnstable)
			}
			if tt.wantUnstable == 0 && b[0] != d.config[0] {
				t.Fatalf("read %#x, the device now holds %#x: torn read returned", b[0], d.config[0])
			}
		})
	}
}
