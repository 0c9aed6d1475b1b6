package virtionet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/devmodel"
	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// openDev starts a device model with the given offer and opens the driver
// on it.
func openDev(t *testing.T, legacy bool, features uint64, opts Options) (*devmodel.Net, *Device) {
	t.Helper()
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	dev, err := devmodel.New(devmodel.Config{Mem: mem, Legacy: legacy, Features: features, MAC: [6]byte{0x52, 0x54, 0, 1, 2, 3}, MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	d, err := Open(dev, mem, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(d.Close)
	return dev, d
}

// eventually waits for cond, failing after a few seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOpenNegotiatesAndReadsConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		legacy  bool
		offer   uint64
		mask    uint64
		wantHdr int
		wantMTU uint32
		wantMAC bool // the device's MAC, else a generated one
	}{
		{"modern with MAC and MTU", false, FeatureMAC | FeatureMTU | FeatureMrgRxbuf, 0, 12, 9000, true},
		{"legacy without MRG_RXBUF has a 10-byte header", true, FeatureMAC, 0, 10, DefaultMTU, true},
		{"legacy with MRG_RXBUF has a 12-byte header", true, FeatureMAC | FeatureMrgRxbuf, 0, 12, DefaultMTU, true},
		{"no MAC feature: generated address", false, FeatureMTU, 0, 12, 9000, false},
		{"mask removes MTU", false, FeatureMAC | FeatureMTU, ^FeatureMTU, 12, DefaultMTU, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev, d := openDev(t, tt.legacy, tt.offer, Options{FeatureMask: tt.mask})
			if d.HeaderLen() != tt.wantHdr {
				t.Errorf("header length %d, want %d", d.HeaderLen(), tt.wantHdr)
			}
			if d.MTU() != tt.wantMTU {
				t.Errorf("MTU %d, want %d", d.MTU(), tt.wantMTU)
			}
			// The device's MTU, or buffers sized for the MTU, bound it.
			eff := tt.offer
			if tt.mask != 0 {
				eff &= tt.mask
			}
			if eff&FeatureMTU != 0 || eff&FeatureMrgRxbuf == 0 {
				d.SetMTU(tt.wantMTU + 1000)
				if d.MTU() != tt.wantMTU {
					t.Errorf("SetMTU(%d) gave MTU %d, want it clamped to %d", tt.wantMTU+1000, d.MTU(), tt.wantMTU)
				}
			}
			mac := d.LinkAddress()
			devMAC := dev.MAC()
			if got := mac == tcpip.LinkAddress(devMAC[:]); got != tt.wantMAC {
				t.Errorf("MAC %v, device's %v", mac, tcpip.LinkAddress(devMAC[:]))
			}
			if !tt.wantMAC && (mac[0]&1 != 0 || mac[0]&2 == 0) {
				t.Errorf("generated MAC %v is not unicast and locally administered", mac)
			}
			if dev.Status()&virtio.StatusDriverOK == 0 {
				t.Errorf("status %#x without DRIVER_OK", dev.Status())
			}
			if dev.Features() != d.Features() {
				t.Errorf("device has %s, driver %s", FeatureString(dev.Features()), FeatureString(d.Features()))
			}
			if s := d.Stats(); s.RxRingInFlight == 0 {
				t.Errorf("RX ring empty after Open: %+v", s)
			}
		})
	}
}

// refusingTransport is a device that clears FEATURES_OK.
type refusingTransport struct{ *devmodel.Net }

func (r refusingTransport) Status() uint8 { return r.Net.Status() &^ virtio.StatusFeaturesOK }

func TestOpenFailureMarksDeviceFailed(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	dev, err := devmodel.New(devmodel.Config{Mem: mem, Features: FeatureMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := Open(refusingTransport{dev}, mem, Options{}); err == nil {
		t.Fatal("Open succeeded although the device refused the features")
	}
	if dev.Status()&virtio.StatusFailed == 0 {
		t.Fatalf("status %#x without FAILED", dev.Status())
	}
}

func TestLinkStateFollowsConfigStatus(t *testing.T) {
	changes := make(chan bool, 4)
	dev, d := openDev(t, false, FeatureStatus, Options{OnLinkChange: func(up bool) { changes <- up }})
	if !d.LinkUp() {
		t.Fatal("link down at start")
	}
	dev.SetLink(false)
	if up := <-changes; up || d.LinkUp() {
		t.Fatal("link still up after the device took it down")
	}
	dev.SetLink(true)
	if up := <-changes; !up || !d.LinkUp() {
		t.Fatal("link still down after the device brought it up")
	}
	if s := d.Stats(); s.LinkChanges != 2 || s.ConfigInterrupts < 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestControlQueue(t *testing.T) {
	t.Run("promiscuous mode set at Open and switched off", func(t *testing.T) {
		dev, d := openDev(t, false, FeatureCtrlVQ|FeatureCtrlRx, Options{Promiscuous: true})
		if p, a := dev.RxMode(); !p || !a {
			t.Fatalf("promisc %v allmulti %v after Open with Promiscuous", p, a)
		}
		if err := d.SetPromiscuous(false); err != nil {
			t.Fatal(err)
		}
		if p, a := dev.RxMode(); p || a {
			t.Fatalf("promisc %v allmulti %v after SetPromiscuous(false)", p, a)
		}
		if s := d.Stats(); s.CtrlCommands != 4 || s.CtrlErrors != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("no CTRL_RX: SetPromiscuous fails", func(t *testing.T) {
		_, d := openDev(t, false, FeatureMAC, Options{})
		if err := d.SetPromiscuous(true); err == nil {
			t.Fatal("SetPromiscuous succeeded without CTRL_RX")
		}
	})
	t.Run("announce request is announced and acknowledged", func(t *testing.T) {
		announced := make(chan struct{}, 1)
		dev, d := openDev(t, false, FeatureCtrlVQ|FeatureGuestAnnounce|FeatureStatus,
			Options{OnAnnounce: func() { announced <- struct{}{} }})
		if !dev.Announce() {
			t.Fatal("device did not negotiate GUEST_ANNOUNCE")
		}
		<-announced
		eventually(t, "announce ack", func() bool { return d.Stats().Announces == 1 })
		var st [2]byte
		dev.ReadConfig(ConfigStatus, st[:])
		if st[0]&byte(StatusAnnounce) != 0 {
			t.Fatal("announce bit still set after the ack")
		}
	})
}

// dispatcherFunc adapts a function to stack.NetworkDispatcher.
type dispatcherFunc func(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)

func (f dispatcherFunc) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	f(p, pkt)
}
func (dispatcherFunc) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func TestWritePacketsReachesThePeer(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	var sides [2]*Device
	var devs [2]*devmodel.Net
	for i := range sides {
		dev, err := devmodel.New(devmodel.Config{Mem: mem, Features: FeatureMAC | FeatureMrgRxbuf, RxBacklog: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		d, err := Open(dev, mem, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		sides[i], devs[i] = d, dev
	}
	devmodel.Connect(devs[0], devs[1])
	got := make(chan []byte, 1)
	sides[1].Attach(dispatcherFunc(func(p tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
		got <- append([]byte(nil), pktBytes(pkt)...)
	}))
	rel := false
	pkt := tcpPacket(frameOf(3000, 4), stack.GSO{}, &rel)
	want := append([]byte(nil), pktBytes(pkt)...)
	var list stack.PacketBufferList
	list.PushBack(pkt)
	if n, err := sides[0].WritePackets(list); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	list.Reset()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("peer got %d bytes, want %d", len(b), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing arrived: %+v %+v", sides[0].Stats(), sides[1].Stats())
	}
	// TX interrupts are off while no writer waits for room: the next write
	// takes the completed chain back.
	eventually(t, "TX completion taken back by the next write", func() bool {
		var next stack.PacketBufferList
		next.PushBack(tcpPacket(frameOf(100, 4), stack.GSO{}, new(bool)))
		sides[0].WritePackets(next)
		next.Reset()
		return sides[0].Stats().TxCompleted >= 1
	})
	if !rel {
		t.Error("the completed packet was not released")
	}
}

// noInterrupts is a device whose transport cannot provide interrupts.
type noInterrupts struct{ *devmodel.Net }

func (noInterrupts) Interrupts(int) ([]virtio.Interrupt, virtio.Interrupt, error) {
	return nil, nil, errors.New("no interrupt line")
}

func TestOpenFailureAfterQueueSetupResetsAndFails(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	dev, err := devmodel.New(devmodel.Config{Mem: mem, Features: FeatureMAC | FeatureMrgRxbuf})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := Open(noInterrupts{dev}, mem, Options{}); err == nil {
		t.Fatal("Open succeeded without interrupts")
	}
	if st := dev.Status(); st&virtio.StatusFailed == 0 || st&virtio.StatusDriverOK != 0 {
		t.Fatalf("status %#x, want FAILED without DRIVER_OK", st)
	}
}

// stuckReset is a device whose resets complete until stuck is set.
type stuckReset struct {
	*devmodel.Net
	stuck *bool
}

func (s stuckReset) Reset() error {
	if *s.stuck {
		return errors.New("reset did not complete")
	}
	return s.Net.Reset()
}

// A device that does not complete its reset may still write into the
// pages posted to it: Close keeps them from netstack, marks the device
// FAILED and counts it.
func TestCloseKeepsBuffersFromADeviceThatDidNotReset(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	dev, err := devmodel.New(devmodel.Config{Mem: mem, Features: FeatureMAC | FeatureMrgRxbuf})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	stuck := false
	d, err := Open(stuckReset{dev, &stuck}, mem, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stuck = true
	posted := d.rx.q.InFlight()
	if posted == 0 {
		t.Fatal("no RX buffers posted")
	}
	d.Close()
	if got := d.rx.q.InFlight(); got != posted {
		t.Errorf("%d RX buffers still with the device after Close, want all %d kept", got, posted)
	}
	if dev.Status()&virtio.StatusFailed == 0 {
		t.Errorf("status %#x without FAILED", dev.Status())
	}
	if s := d.Stats(); s.ResetFailures != 1 {
		t.Errorf("ResetFailures %d, want 1", s.ResetFailures)
	}
}

// On a small TX queue netstack is asked for TSO segments whose pages fit a
// chain (a 64 KiB segment needs 17 descriptors and more).
func TestGSOMaxSizeFitsASmallQueue(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	for _, tt := range []struct {
		size int
		want uint32
	}{{256, gsoMaxSize}, {16, 14 * pageSize}} {
		dev, err := devmodel.New(devmodel.Config{Mem: mem, QueueSize: tt.size,
			Features: FeatureMAC | FeatureMrgRxbuf | FeatureCsum | FeatureHostTSO4 | FeatureHostTSO6})
		if err != nil {
			t.Fatal(err)
		}
		d, err := Open(dev, mem, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.GSOMaxSize(); got != tt.want {
			t.Errorf("queue of %d: GSOMaxSize %d, want %d", tt.size, got, tt.want)
		}
		d.Close()
		dev.Close()
	}
}

// ailingDevice is a device whose reset stops completing once stuck is
// set, and which stops offering the features in drop, as a device replaced
// behind the driver's back might.
type ailingDevice struct {
	stuckReset
	drop *atomic.Uint64
}

func (a ailingDevice) DeviceFeatures() uint64 { return a.Net.DeviceFeatures() &^ a.drop.Load() }

// A device that cannot be brought back after it asked for a reset is given
// up on: marked FAILED, its buffers kept from netstack when the reset did
// not complete, packets dropped and counted at once rather than waiting on
// a ring nobody drains.
func TestRecoveryGivesUpOnADeviceThatCannotComeBack(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stuck     bool   // the reset does not complete
		drop      uint64 // features the device no longer offers after it
		keepsBufs bool
		log       string
	}{
		{name: "reset does not complete", stuck: true, keepsBufs: true, log: "reset did not complete"},
		{name: "features change", drop: FeatureMrgRxbuf, log: "not 0x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := &virtqueue.HeapDMA{AutoRegister: true}
			dev, err := devmodel.New(devmodel.Config{Mem: mem, Features: FeatureMAC | FeatureMrgRxbuf})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			stuck := false
			var drop atomic.Uint64
			var logMu sync.Mutex
			var logs []string
			d, err := Open(ailingDevice{stuckReset{dev, &stuck}, &drop}, mem, Options{Logf: func(f string, a ...any) {
				logMu.Lock()
				defer logMu.Unlock()
				logs = append(logs, fmt.Sprintf(f, a...))
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			stuck = tc.stuck
			drop.Store(tc.drop)
			posted := d.rx.q.InFlight()
			dev.Break()
			for deadline := time.Now().Add(10 * time.Second); d.Stats().RecoveryFailures == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no recovery failure counted: %+v", d.Stats())
				}
			}
			if dev.Status()&virtio.StatusFailed == 0 {
				t.Errorf("status %#x without FAILED", dev.Status())
			}
			if got := d.rx.q.InFlight(); tc.keepsBufs && got != posted {
				t.Errorf("%d RX buffers still with the device, want all %d kept", got, posted)
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, 60))})
			defer pkt.DecRef()
			var pkts stack.PacketBufferList
			pkts.PushBack(pkt)
			if n, err := d.WritePackets(pkts); n != 1 || err != nil {
				t.Errorf("WritePackets on a failed device: %d, %v; want the packet taken (dropped)", n, err)
			}
			if s := d.Stats(); s.TxDropFailed != 1 || s.Recoveries != 0 {
				t.Errorf("TxDropFailed %d Recoveries %d, want 1 and 0", s.TxDropFailed, s.Recoveries)
			}
			logMu.Lock()
			defer logMu.Unlock()
			if all := strings.Join(logs, "\n"); !strings.Contains(all, tc.log) {
				t.Errorf("log does not say %q:\n%s", tc.log, all)
			}
		})
	}
}

// A device MTU below IPv4's minimum (68) is declined, as Linux's
// virtnet_validate does, and the driver runs with its own MTU instead of
// refusing the device.
func TestOpenDeclinesAnMTUBelowTheMinimum(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	dev, err := devmodel.New(devmodel.Config{Mem: mem, Features: FeatureMAC | FeatureMTU | FeatureMrgRxbuf, MTU: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	d, err := Open(dev, mem, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer d.Close()
	if d.Features()&FeatureMTU != 0 {
		t.Errorf("features %s: MTU accepted", FeatureString(d.Features()))
	}
	if d.MTU() != DefaultMTU {
		t.Errorf("MTU %d, want the default %d", d.MTU(), DefaultMTU)
	}
}

// A device that stops returning TX buffers (here a legacy one broken
// without a word: no DEVICE_NEEDS_RESET to recover on) costs netstack one
// wait of fullWait once the ring is full; later writes return
// ErrWouldBlock at once rather than each blocking the stack for fullWait,
// until the device returns a chain.
func TestStalledDeviceCostsOneWait(t *testing.T) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	dev, err := devmodel.New(devmodel.Config{Mem: mem, Legacy: true, Features: FeatureMAC | FeatureMrgRxbuf})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	d, err := Open(dev, mem, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.tx.mu.Lock()
	d.tx.fullWait = time.Second
	d.tx.mu.Unlock()
	dev.Break()

	done := make(chan error, 1)
	go func() {
		blocked := 0
		for i := 0; i < 400; i++ {
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, 100))})
			var pkts stack.PacketBufferList
			pkts.PushBack(pkt)
			if _, err := d.WritePackets(pkts); err != nil {
				blocked++
			}
			pkt.DecRef()
		}
		if blocked == 0 {
			done <- errors.New("the ring never filled")
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second): // 300 waits of 1 s would take minutes
		t.Fatalf("writes to a stalled device kept waiting: %+v", d.Stats())
	}
	if s := d.Stats(); s.TxStalls != 1 {
		t.Errorf("TxStalls %d, want 1", s.TxStalls)
	}
}
