package virtiommio

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
)

// microvmSlot is where QEMU's microvm puts its last transport (acpi=off).
var microvmSlot = Device{Base: 0xfeb00e00, Size: 512, IRQ: 12, ID: -1}

func open(t *testing.T, f *fakeDevice) (*Transport, *fakeLines) {
	t.Helper()
	lines := &fakeLines{line: &fakeLine{fire: make(chan struct{}, 1)}}
	tr, err := Open(microvmSlot, Platform{Mapper: &fakeMapper{dev: f}, Lines: lines}, Options{ResetTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tr, lines
}

func TestOpenRejectsWhatIsNotAVirtioDevice(t *testing.T) {
	for _, tc := range []struct {
		name string
		bend func(*fakeDevice)
		want error
	}{
		{"wrong magic", func(f *fakeDevice) { f.magic = 0x74726977 }, ErrNotVirtio},
		{"absent device reading all ones", func(f *fakeDevice) { f.magic, f.version = 0xffffffff, 0xffffffff }, ErrNotVirtio},
		{"version 0", func(f *fakeDevice) { f.version = 0 }, ErrBadVersion},
		{"version 3", func(f *fakeDevice) { f.version = 3 }, ErrBadVersion},
		{"empty slot, device ID 0", func(f *fakeDevice) { f.deviceID = 0 }, ErrEmptySlot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(versionModern)
			tc.bend(f)
			_, err := Open(microvmSlot, Platform{Mapper: &fakeMapper{dev: f}}, Options{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenReadsIdentityAndCountsQueues(t *testing.T) {
	for _, version := range []uint32{versionLegacy, versionModern} {
		f := newFake(version)
		m := &fakeMapper{dev: f}
		tr, err := Open(microvmSlot, Platform{Mapper: m}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m.phys != microvmSlot.Base || m.size != microvmSlot.Size {
			t.Errorf("mapped %#x+%#x, want the device's window", m.phys, m.size)
		}
		if tr.DeviceID() != 1 || tr.VendorID() != 0x554d4551 || tr.Version() != int(version) || tr.Legacy() != (version == versionLegacy) {
			t.Errorf("version %d: id %d vendor %#x version %d legacy %v", version, tr.DeviceID(), tr.VendorID(), tr.Version(), tr.Legacy())
		}
		if tr.NumQueues() != 3 {
			t.Errorf("version %d: %d queues, want 3", version, tr.NumQueues())
		}
	}
}

func TestQueueNumMaxZeroMeansNoQueue(t *testing.T) {
	f := newFake(versionModern)
	f.numMax = []uint32{0, 256}
	tr, _ := open(t, f)
	if tr.NumQueues() != 0 {
		t.Errorf("NumQueues %d with queue 0's QueueNumMax 0, want 0", tr.NumQueues())
	}
	if n := tr.QueueMaxSize(0); n != 0 {
		t.Errorf("QueueMaxSize(0) = %d", n)
	}
	if err := tr.SetupQueue(0, 256, 0x10000, 0x11000, 0x12000); !errors.Is(err, ErrBadQueue) {
		t.Errorf("SetupQueue on a missing queue: %v", err)
	}
	if _, _, err := tr.Interrupts(1); !errors.Is(err, ErrBadQueue) {
		t.Errorf("Interrupts for a missing queue: %v", err)
	}
}

func TestQueueMaxSizeIsCutToWhatASplitRingCanBe(t *testing.T) {
	for _, tc := range []struct {
		version uint32
		max     uint32
		want    int
		clamped uint64
	}{
		{versionModern, 256, 256, 0},
		{versionModern, 1000, 1000, 0}, // the driver picks a power of two below
		{versionModern, 0xffffffff, 32768, 1},
		{versionLegacy, 256, 256, 0},
		{versionLegacy, 1000, 512, 1}, // legacy drivers use this size as is
		{versionLegacy, 0xffffffff, 32768, 1},
	} {
		f := newFake(tc.version)
		f.numMax = []uint32{tc.max}
		tr, _ := open(t, f)
		if got := tr.QueueMaxSize(0); got != tc.want {
			t.Errorf("version %d QueueNumMax %d: QueueMaxSize %d, want %d", tc.version, tc.max, got, tc.want)
		}
		if got := tr.Stats().QueueSizeClamped; got != tc.clamped {
			t.Errorf("version %d QueueNumMax %d: QueueSizeClamped %d, want %d", tc.version, tc.max, got, tc.clamped)
		}
	}
}

func TestResetWaitsForStatusZeroAndGivesUpOnADeviceThatNeverResets(t *testing.T) {
	f := newFake(versionModern)
	tr, _ := open(t, f)
	tr.SetStatus(virtio.StatusAcknowledge)
	if err := tr.Reset(); err != nil || tr.Status() != 0 {
		t.Fatalf("Reset: %v, status %#x", err, tr.Status())
	}
	f.stuckStatus = true
	tr.SetStatus(virtio.StatusAcknowledge)
	start := time.Now()
	if err := tr.Reset(); !errors.Is(err, ErrResetTimeout) {
		t.Fatalf("Reset of a stuck device: %v, want ErrResetTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Reset took %v with a 20 ms timeout", d)
	}
}

func TestNegotiateUsesAll64FeatureBitsOnModernAnd32OnLegacy(t *testing.T) {
	for _, version := range []uint32{versionLegacy, versionModern} {
		f := newFake(version)
		tr, _ := open(t, f)
		acc, err := virtio.Negotiate(tr, ^uint64(0), ^uint64(0))
		if err != nil {
			t.Fatalf("version %d: Negotiate: %v", version, err)
		}
		want := f.features
		if version == versionLegacy {
			want &= 0xffffffff
		}
		if acc != want || f.driverFeatures != want {
			t.Errorf("version %d: accepted %#x, device got %#x, want %#x", version, acc, f.driverFeatures, want)
		}
		wantStatus := uint32(virtio.StatusAcknowledge | virtio.StatusDriver)
		if version == versionModern {
			wantStatus |= uint32(virtio.StatusFeaturesOK)
		}
		if f.status != wantStatus {
			t.Errorf("version %d: status %#x, want %#x", version, f.status, wantStatus)
		}
	}
}

func TestModernQueueSetupWritesTheRingsAndChecksQueueReady(t *testing.T) {
	f := newFake(versionModern)
	tr, _ := open(t, f)
	if err := tr.SetupQueue(1, 128, 0x1_0000_1000, 0x1_0000_2000, 0x1_0000_3000); err != nil {
		t.Fatal(err)
	}
	q := f.queues[1]
	if q.num != 128 || q.desc != 0x1_0000_1000 || q.driver != 0x1_0000_2000 || q.device != 0x1_0000_3000 || q.ready != 1 {
		t.Errorf("queue 1 registers %+v", *q)
	}
	for _, tc := range []struct {
		name              string
		size              int
		desc, avail, used uint64
	}{
		{"already ready", 128, 0x1000, 0x2000, 0x3000},
		{"size above QueueNumMax", 512, 0x1000, 0x2000, 0x3000},
		{"size not a power of two", 100, 0x1000, 0x2000, 0x3000},
		{"misaligned descriptors", 64, 0x1008, 0x2000, 0x3000},
		{"misaligned used ring", 64, 0x1000, 0x2000, 0x3002},
	} {
		qi := 0
		if tc.name == "already ready" {
			qi = 1
		}
		if err := tr.SetupQueue(qi, tc.size, tc.desc, tc.avail, tc.used); !errors.Is(err, ErrBadQueue) {
			t.Errorf("%s: %v, want ErrBadQueue", tc.name, err)
		}
	}
	f.dropReady = true
	if err := tr.SetupQueue(2, 64, 0x1000, 0x2000, 0x3000); !errors.Is(err, ErrBadQueue) {
		t.Errorf("a device that drops QueueReady: %v, want ErrBadQueue", err)
	}
}

func TestLegacyQueueSetupUsesPageNumbersAndTheContiguousLayout(t *testing.T) {
	f := newFake(versionLegacy)
	tr, _ := open(t, f)
	const desc = 0x20_0000
	avail := uint64(desc + 16*256)
	used := alignUp(avail+6+2*256, 4096)
	if err := tr.SetupQueue(0, 256, desc, avail, used); err != nil {
		t.Fatal(err)
	}
	q := f.queues[0]
	if f.guestPageSize != 4096 || q.num != 256 || q.align != 4096 || q.pfn != desc>>12 {
		t.Errorf("page size %d, queue %+v", f.guestPageSize, *q)
	}
	for _, tc := range []struct {
		name              string
		size              int
		desc, avail, used uint64
	}{
		{"size other than the transport's", 128, desc, avail, used},
		{"page number 0", 256, 0, 16 * 256, alignUp(16*256+6+2*256, 4096)},
		{"available ring elsewhere", 256, desc, avail + 64, used},
		{"used ring elsewhere", 256, desc, avail, used + 4096},
	} {
		if err := tr.SetupQueue(1, tc.size, tc.desc, tc.avail, tc.used); !errors.Is(err, ErrBadQueue) {
			t.Errorf("%s: %v, want ErrBadQueue", tc.name, err)
		}
	}
}

func TestNotifyWritesTheQueueIndexAndCountsBadQueues(t *testing.T) {
	f := newFake(versionModern)
	tr, _ := open(t, f)
	tr.Notify(2)
	tr.Notify(3)
	tr.Notify(-1)
	if len(f.notified) != 1 || f.notified[0] != 2 {
		t.Errorf("notified %v, want [2]", f.notified)
	}
	if n := tr.Stats().NotifyBadQueue; n != 2 {
		t.Errorf("NotifyBadQueue %d, want 2", n)
	}
}

func TestConfigAccessStaysInsideTheWindow(t *testing.T) {
	f := newFake(versionModern)
	tr, _ := open(t, f)
	copy(f.config, []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0, 0xdc, 0x05})
	mac := make([]byte, 6)
	tr.ReadConfig(0, mac)
	if string(mac) != "\x52\x54\x00\x12\x34\x56" {
		t.Errorf("MAC % x", mac)
	}
	mtu := make([]byte, 2)
	tr.ReadConfig(8, mtu)
	if mtu[0] != 0xdc || mtu[1] != 0x05 {
		t.Errorf("16-bit field % x", mtu)
	}
	b := []byte{1, 2, 3, 4}
	tr.ReadConfig(0x100-2, b) // past the 512-byte window's 256 configuration bytes
	if string(b) != "\x00\x00\x00\x00" {
		t.Errorf("read past the window gave % x, want zeros", b)
	}
	tr.WriteConfig(0x100, []byte{1})
	tr.ReadConfig(-1, b[:1])
	if n := tr.Stats().ConfigOutOfRange; n != 3 {
		t.Errorf("ConfigOutOfRange %d, want 3", n)
	}
	tr.WriteConfig(4, []byte{9, 8})
	if f.config[4] != 9 || f.config[5] != 8 {
		t.Errorf("WriteConfig did not reach the device: % x", f.config[4:6])
	}
}

func TestConfigReadRetriesWhileTheGenerationChanges(t *testing.T) {
	f := newFake(versionModern)
	tr, _ := open(t, f)
	f.bumpGeneration = 3
	tr.ReadConfig(0, make([]byte, 4))
	if s := tr.Stats(); s.ConfigRetries == 0 || s.ConfigUnstable != 0 {
		t.Errorf("generation changing for a while: %+v", s)
	}
	f.bumpGeneration = 1 << 20
	tr.ReadConfig(0, make([]byte, 4))
	if s := tr.Stats(); s.ConfigUnstable != 1 {
		t.Errorf("generation never settling: ConfigUnstable %d, want 1", s.ConfigUnstable)
	}
}

func TestOneLineServesEveryQueueAndTheConfiguration(t *testing.T) {
	f := newFake(versionModern)
	tr, lines := open(t, f)
	queues, config, err := tr.Interrupts(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines.gsi) != 1 || lines.gsi[0] != microvmSlot.IRQ {
		t.Fatalf("asked the platform for lines %v, want [%d]", lines.gsi, microvmSlot.IRQ)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 30*time.Millisecond)
	}

	// A used-buffer interrupt wakes every queue, not the configuration,
	// and is acknowledged with the bits read.
	f.mu.Lock()
	f.isr = virtio.InterruptUsedBuffer
	f.mu.Unlock()
	lines.line.fire <- struct{}{}
	for i, q := range queues {
		if err := q.Wait(ctx); err != nil {
			t.Fatalf("queue %d: %v", i, err)
		}
	}
	c, stop := short()
	if err := config.Wait(c); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("configuration woke on a used-buffer interrupt: %v", err)
	}
	stop()
	if len(f.acks) != 1 || f.acks[0] != virtio.InterruptUsedBuffer || f.isr != 0 {
		t.Errorf("acks %v, isr left %#x", f.acks, f.isr)
	}
	if lines.line.rearms != 1 {
		t.Errorf("line re-armed %d times, want 1", lines.line.rearms)
	}

	// A configuration change wakes the configuration only.
	f.mu.Lock()
	f.isr = virtio.InterruptConfig
	f.mu.Unlock()
	lines.line.fire <- struct{}{}
	if err := config.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	c, stop = short()
	if err := queues[0].Wait(c); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a queue woke on a configuration interrupt: %v", err)
	}
	stop()

	// A line that fires with nothing pending is counted, and unknown bits
	// are acknowledged so that they cannot hold the line up.
	f.mu.Lock()
	f.isr = 1 << 7
	f.mu.Unlock()
	lines.line.fire <- struct{}{}
	c, stop = short()
	queues[1].Wait(c)
	stop()
	if s := tr.Stats(); s.LineInterrupts != 3 || s.SpuriousLine != 1 {
		t.Errorf("stats %+v, want 3 line interrupts, 1 spurious", s)
	}
	if f.isr != 0 {
		t.Errorf("unknown bit left set: isr %#x", f.isr)
	}

	// A second Interrupts call (after a reset, say) reuses the line.
	if _, _, err := tr.Interrupts(1); err != nil || len(lines.gsi) != 1 {
		t.Errorf("second Interrupts: %v, platform asked %d times", err, len(lines.gsi))
	}
}

func TestInterruptsWithoutAPlatformLineFail(t *testing.T) {
	f := newFake(versionModern)
	tr, err := Open(microvmSlot, Platform{Mapper: &fakeMapper{dev: f}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Interrupts(1); !errors.Is(err, ErrNoInterrupt) {
		t.Errorf("Interrupts: %v, want ErrNoInterrupt", err)
	}
}
