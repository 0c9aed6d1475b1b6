package virtionet

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Queue indices without MQ (virtio 1.2 §5.1.2).
const (
	rxQueueIndex   = 0
	txQueueIndex   = 1
	ctrlQueueIndex = 2
)

// DefaultQueueSize is the ring size asked of a modern device (a legacy
// device fixes its own).
const DefaultQueueSize = 256

// defaultRxBudget is how many used entries the RX loop handles between
// refills.
const defaultRxBudget = 64

// Options configures Open.
type Options struct {
	// FeatureMask limits the features the driver accepts, on top of what
	// the device offers and the driver implements (Implemented). Zero
	// means no limit. VERSION_1 is always accepted on a modern device.
	// Clearing virtio.FeatureRingPacked keeps split rings on a device
	// that offers packed ones.
	FeatureMask uint64
	// QueueSize is the RX and TX ring size on a modern device (rounded
	// down to a power of two and to the device's maximum); 0 means
	// DefaultQueueSize. A legacy device imposes its own size.
	QueueSize int
	// MTU is used when the device reports none (no FeatureMTU); 0 means
	// DefaultMTU.
	MTU int
	// MAC is used when the device has none (no FeatureMAC); empty means a
	// generated locally administered address.
	MAC tcpip.LinkAddress
	// Promiscuous asks the device for promiscuous and all-multicast
	// reception when CTRL_RX is negotiated.
	Promiscuous bool
	// OnLinkChange, if set, is called (from the config loop) when the
	// link goes up or down, and (from the recovery loop) around a device
	// reset, during which the link carries nothing.
	OnLinkChange func(up bool)
	// OnAnnounce, if set, is called when the device asks the driver to
	// announce itself (GUEST_ANNOUNCE, e.g. after migration); it should send
	// gratuitous ARP / unsolicited neighbour advertisements. The driver
	// acknowledges the request afterwards.
	OnAnnounce func()
	// Logf, if set, receives the driver's rare events: device resets and
	// recoveries, and why they happened.
	Logf func(format string, args ...any)
}

// Device is an open virtio-net device. It is also the gVisor link endpoint
// (endpoint.go) for the device.
type Device struct {
	t        virtio.Transport // the device
	features uint64           // accepted features
	supports uint64           // what Negotiate was offered (driver's set); recover renegotiates with it
	mask     uint64           // the user's mask given to Negotiate
	hdrLen   int              // virtio header size for these features
	opts     Options          // what Open was given

	rxMu   sync.Mutex        // held by the RX loop while it polls, and by recover
	rx     *rxRing           // receive side; used under rxMu
	tx     *txRing           // transmit side
	ctrl   *ctrlQueue        // control queue; nil without CTRL_VQ
	queues []virtqueue.Queue // every virtqueue, by index; recover sets them up again

	// resetReq asks the recovery loop to reset the device (one slot; see
	// requestReset). failed is set once the device could not be reset or
	// brought back: the driver then only drops.
	resetReq chan struct{}
	failed   atomic.Bool

	c counters // the counters behind Stats

	mtu    atomic.Uint32     // current MTU
	maxMTU uint32            // the largest MTU SetMTU accepts; constant after Open
	macMu  sync.Mutex        // guards mac
	mac    tcpip.LinkAddress // source address of outgoing frames
	linkUp atomic.Bool       // link state from config status
	// rxCsumOK is set while a packet whose checksum needs no verification
	// is being delivered (see Capabilities).
	rxCsumOK atomic.Bool

	dispatcher atomic.Pointer[dispatcherBox] // netstack's dispatcher; nil when detached
	onClose    atomic.Pointer[func()]        // SetOnCloseAction's action

	// How each loop is woken; set up by startInterrupts before the loops
	// start, read-only after.
	rxWake, txWake, ctrlWake, cfgWake wakeup

	ctx     context.Context    // cancelled by Close; stops every goroutine
	cancel  context.CancelFunc // cancels ctx
	wg      sync.WaitGroup     // the driver's goroutines
	closing atomic.Bool        // set by the first Close
}

// dispatcherBox holds an interface value behind an atomic pointer.
type dispatcherBox struct{ d stack.NetworkDispatcher }

// Open brings the device up: reset, feature negotiation, configuration,
// queues, RX ring filled, DRIVER_OK. On error the device is marked FAILED.
// The returned Device is running (its interrupt loops started) and ready to
// be given to a gVisor stack with CreateNIC.
func Open(t virtio.Transport, dma virtqueue.DMA, opts Options) (*Device, error) {
	d, err := open(t, dma, opts)
	if err != nil {
		virtio.Fail(t)
		return nil, err
	}
	return d, nil
}

func open(t virtio.Transport, dma virtqueue.DMA, opts Options) (_ *Device, err error) {
	supports, mask := supported(opts.FeatureMask, t.Legacy())
	// A device MTU below IPv4's minimum cannot be used; like Linux, the
	// driver then declines FeatureMTU and picks its own MTU rather than
	// refusing the device. The field may be read while features are being
	// negotiated (virtio 1.2 §3.1.1) and is valid when the feature is
	// offered (§5.1.4).
	if t.DeviceFeatures()&FeatureMTU != 0 && readConfig16(t, ConfigMTU) < minMTU {
		supports &^= FeatureMTU
	}
	features, err := virtio.Negotiate(t, supports, mask, featureDeps...)
	if err != nil {
		return nil, fmt.Errorf("virtionet: %w", err)
	}

	d := &Device{
		t:        t,
		features: features,
		supports: supports,
		mask:     mask,
		resetReq: make(chan struct{}, 1),
		hdrLen:   headerLen(features),
		opts:     opts,
		rxWake:   newWakeup(),
		txWake:   newWakeup(),
		ctrlWake: newWakeup(),
		cfgWake:  newWakeup(),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	started := false
	defer func() {
		if err == nil {
			return
		}
		// Take back whatever was posted: after the reset the device
		// owns nothing.
		if started {
			d.Close()
			return
		}
		d.cancel()
		d.resetAndDetach()
	}()

	if err := d.readConfig(); err != nil {
		return nil, err
	}
	qirqs, cfgirq, err := d.setupRings(dma)
	if err != nil {
		return nil, err
	}
	if err := d.goLive(); err != nil {
		return nil, err
	}
	d.linkUp.Store(readStatus(t, features)&StatusLinkUp != 0)
	d.startLoops(qirqs, cfgirq)
	started = true

	if d.ctrl != nil && features&FeatureCtrlRx != 0 && opts.Promiscuous {
		if err = d.ctrl.setRxMode(d.ctx, true); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// readConfig reads what Open needs from the device's configuration space
// for the negotiated features: the MAC address (or Options.MAC), the MTU
// and the largest MTU SetMTU may set later.
func (d *Device) readConfig() error {
	t, features, opts := d.t, d.features, d.opts
	mac := opts.MAC
	if mac != "" && len(mac) != 6 {
		return fmt.Errorf("virtionet: Options.MAC %q is not 6 bytes", mac)
	}
	if features&FeatureMAC != 0 || mac == "" {
		var err error
		if mac, err = readMAC(t, features); err != nil {
			return err
		}
	}
	d.mac = mac
	def := opts.MTU
	if def == 0 {
		def = DefaultMTU
	}
	mtu, err := readMTU(t, features, def)
	if err != nil {
		return err
	}
	d.mtu.Store(uint32(mtu))
	// The device's MTU is a limit (virtio 1.2 §5.1.6.1); without one, so
	// are buffers sized for the MTU at Open (no MRG_RXBUF, no GUEST_TSO).
	d.maxMTU = maxFrameLen - header.EthernetMinimumSize - 4
	if features&FeatureMTU != 0 || (features&FeatureMrgRxbuf == 0 && features&(FeatureGuestTSO4|FeatureGuestTSO6) == 0) {
		d.maxMTU = uint32(mtu)
	}
	return nil
}

// setupRings asks the transport for the queues' interrupts, creates the
// virtqueues, hands them to the device, and builds the RX, TX and control
// rings on them, wired to the device (notifications, fault reports,
// delivery). It returns the interrupts for startLoops. The RX ring's
// notify stays a no-op until goLive.
func (d *Device) setupRings(dma virtqueue.DMA) (qirqs []virtio.Interrupt, cfgirq virtio.Interrupt, err error) {
	t, features := d.t, d.features
	nq := 2
	if features&FeatureCtrlVQ != 0 {
		nq = 3
	}
	if t.NumQueues() < nq {
		return nil, nil, fmt.Errorf("virtionet: device has %d queues, need %d", t.NumQueues(), nq)
	}
	// Interrupts first: a queue's MSI-X vector must be in place before the
	// queue is enabled (virtio 1.2 §4.1.4.3.2), and setting up a queue
	// enables it.
	qirqs, cfgirq, err = t.Interrupts(nq)
	if err != nil {
		return nil, nil, fmt.Errorf("virtionet: interrupts: %w", err)
	}
	if len(qirqs) < nq {
		return nil, nil, fmt.Errorf("virtionet: transport gave %d queue interrupts, need %d", len(qirqs), nq)
	}
	qs := make([]virtqueue.Queue, nq)
	for i := range qs {
		if qs[i], err = d.newQueue(dma, i); err != nil {
			return nil, nil, err
		}
		if err := d.giveQueue(i, qs[i]); err != nil {
			return nil, nil, err
		}
	}
	d.queues = qs
	d.rx = newRxRing(qs[rxQueueIndex], dma, features, int(d.mtu.Load()), &d.c)
	d.rx.deliver = d.deliver
	d.rx.faulted = d.requestReset
	if d.tx, err = newTxRing(qs[txQueueIndex], dma, features, &d.c); err != nil {
		return nil, nil, err
	}
	d.tx.notify = func() { t.Notify(txQueueIndex) }
	d.tx.faulted = d.requestReset
	if nq == 3 {
		if d.ctrl, err = newCtrlQueue(qs[ctrlQueueIndex], dma, &d.c); err != nil {
			return nil, nil, err
		}
		d.ctrl.notify = func() { t.Notify(ctrlQueueIndex) }
		d.ctrl.wait = d.waitCtrl
		d.ctrl.faulted = d.requestReset
	}
	return qirqs[:nq:nq], cfgirq, nil
}

// goLive fills the RX ring, sets DRIVER_OK and tells the device about the
// buffers: the end of Open's initialization and of a recovery (recover).
// Buffers are posted before DRIVER_OK; the device is notified only after
// it (virtio 1.2 §3.1.1), so the RX ring's notify is a no-op while it
// fills.
func (d *Device) goLive() error {
	d.rx.notify = func() {}
	d.rx.Refill()
	if d.rx.q.InFlight() == 0 {
		return fmt.Errorf("virtionet: could not post any RX buffer (%d refill errors)", d.c.rxRefillErrors.Load())
	}
	if err := virtio.DriverOK(d.t); err != nil {
		return fmt.Errorf("virtionet: %w", err)
	}
	d.t.Notify(rxQueueIndex)
	d.rx.notify = func() { d.t.Notify(rxQueueIndex) }
	return nil
}

// startLoops gives the RX, TX, control and configuration loops their
// interrupts (qirqs by queue index, then cfgirq) and starts them with the
// recovery loop.
func (d *Device) startLoops(qirqs []virtio.Interrupt, cfgirq virtio.Interrupt) {
	wakes := []*wakeup{&d.rxWake, &d.txWake}
	if len(qirqs) > ctrlQueueIndex {
		wakes = append(wakes, &d.ctrlWake)
	}
	d.startInterrupts(append(qirqs, cfgirq), append(wakes, &d.cfgWake))
	d.wg.Add(4)
	go d.rxLoop()
	go d.txLoop()
	go d.configLoop()
	go d.recoveryLoop()
}

// newQueue creates virtqueue i, split or packed as negotiated, at the
// size the transport allows.
func (d *Device) newQueue(dma virtqueue.DMA, i int) (virtqueue.Queue, error) {
	max := d.t.QueueMaxSize(i)
	if max <= 0 {
		return nil, fmt.Errorf("virtionet: queue %d does not exist", i)
	}
	size := max
	if !d.t.Legacy() {
		want := d.opts.QueueSize
		if want <= 0 {
			want = DefaultQueueSize
		}
		size = min(size, want, 32768)
		// Split rings are powers of two; packed ones need not be, but
		// the PCI transport asks for it of every queue.
		size = 1 << (bits.Len(uint(size)) - 1)
	}
	opts := virtqueue.Options{
		Size:     size,
		Legacy:   d.t.Legacy(),
		EventIdx: d.features&virtio.FeatureEventIdx != 0,
		Indirect: d.features&virtio.FeatureIndirectDesc != 0,
	}
	var q virtqueue.Queue
	var err error
	if d.features&virtio.FeatureRingPacked != 0 {
		// Negotiate never accepts RING_PACKED on a legacy transport
		// (supported), so opts.Legacy is false here.
		q, err = virtqueue.NewPacked(dma, opts)
	} else {
		q, err = virtqueue.NewSplit(dma, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("virtionet: queue %d: %w", i, err)
	}
	return q, nil
}

// giveQueue hands queue i's addresses to the device, which enables it: at
// Open and again after a reset. Split: descriptor table, avail ring, used
// ring. Packed: descriptor ring, driver and device event suppression
// areas. The transport writes them to the same three registers
// (queue_desc, queue_driver, queue_device) either way.
func (d *Device) giveQueue(i int, q virtqueue.Queue) error {
	desc, avail, used := q.Addresses()
	if err := d.t.SetupQueue(i, q.Size(), desc, avail, used); err != nil {
		return fmt.Errorf("virtionet: setting up queue %d: %w", i, err)
	}
	return nil
}

// Features returns the negotiated feature bits.
func (d *Device) Features() uint64 { return d.features }

// HeaderLen returns the size of the virtio header in use (10 or 12).
func (d *Device) HeaderLen() int { return d.hdrLen }

// LinkUp reports the link state from the config status field.
func (d *Device) LinkUp() bool { return d.linkUp.Load() }

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats { return d.c.snapshot() }

// SetPromiscuous switches promiscuous reception through the control queue.
func (d *Device) SetPromiscuous(on bool) error {
	if d.ctrl == nil || d.features&FeatureCtrlRx == 0 {
		return fmt.Errorf("%w: CTRL_RX not negotiated", ErrCtrl)
	}
	return d.ctrl.setRxMode(d.ctx, on)
}

// Close stops the loops, resets the device and releases every buffer. It
// is safe to call more than once.
func (d *Device) Close() {
	// The close action netstack installs may remove the NIC, which calls
	// Close again: that nested call must return, not wait for this one.
	if !d.closing.CompareAndSwap(false, true) {
		return
	}
	if f := d.onClose.Swap(nil); f != nil {
		(*f)()
	}
	d.cancel()
	d.wg.Wait()
	d.resetAndDetach()
}

// resetAndDetach resets the device and, once it owns nothing, takes every
// buffer posted to it back. A reset that does not complete leaves the
// device free to write into the pages it holds: they stay with it (lost,
// rather than handed to netstack while the device may still write), the
// device is marked FAILED, and the failure is counted.
func (d *Device) resetAndDetach() {
	if err := d.t.Reset(); err != nil {
		d.c.resetFailures.Add(1)
		virtio.Fail(d.t)
		return
	}
	if d.rx != nil {
		d.rx.Detach()
	}
	if d.tx != nil {
		d.tx.Detach()
	}
}
