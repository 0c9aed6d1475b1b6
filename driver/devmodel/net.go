package devmodel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
)

// DefaultQueueSize is the queue size when Config.QueueSize is 0, QEMU's
// default for virtio-net.
const DefaultQueueSize = 256

// inboundSlack is how many frames may wait between the goroutine that hands
// them over (a peer, a test) and this device's goroutine, on top of
// Config.RxBacklog.
const inboundSlack = 1024

// Config describes the device a Net models.
type Config struct {
	// Mem is the driver's memory, for resolving ring and buffer addresses.
	Mem Memory
	// Legacy selects the legacy (pre-1.0) interface: 32 feature bits, no
	// FEATURES_OK, the contiguous queue layout with a fixed size. Otherwise
	// the device is modern and always offers VIRTIO_F_VERSION_1.
	Legacy bool
	// Features are the feature bits offered (virtio-net bits of this package
	// and the transport bits of package virtio). MQ is never offered.
	// With virtio.FeatureRingPacked (modern only) the queues a driver sets
	// up after accepting it are packed rings.
	Features uint64
	// MAC is the config-space MAC address (meaningful with FeatureMAC).
	MAC [6]byte
	// MTU is the config-space MTU (meaningful with FeatureMTU).
	MTU uint16
	// LinkDown starts the device with the link down (default up).
	LinkDown bool
	// QueueSize is every queue's maximum (and, legacy, only) size; 0 means
	// DefaultQueueSize.
	QueueSize int
	// RxBacklog is how many received frames the device holds while the
	// driver has no receive buffer posted, as QEMU's queue does; they are
	// delivered when the driver notifies the receive queue, and a connected
	// sender waits while the backlog is full. 0 drops such frames at once
	// (counted in Stats.RxDropNoBuffers).
	RxBacklog int
	// WireStall is how long a connected sender holds a frame back for a
	// receiver whose backlog stays full before it starts dropping; 0 means
	// DefaultWireStall.
	WireStall time.Duration
	// Capture, if set, receives every frame transmitted by the driver that
	// no peer takes. It runs on the device goroutine with the device locked:
	// it must not call the Net's methods. It owns the Frame.
	Capture func(Frame)
	// CaptureFeatures are the offloads the capturing side accepts, as guest
	// feature bits (FeatureGuestCsum, FeatureGuestTSO4...): without them,
	// frames are checksummed and segmented before Capture sees them.
	CaptureFeatures uint64
}

// Hostile makes the device lie to the driver, for fuzzing it. Each hook, when
// set, is called with what an honest device would write and returns what the
// device writes instead. Hooks run on the device goroutine.
type Hostile struct {
	UsedID     func(q int, id uint32) uint32     // id of a used element
	UsedLen    func(q int, length uint32) uint32 // len of a used element
	NumBuffers func(n uint16) uint16             // num_buffers of a received packet
	RxHeader   func(h *Header)                   // the rest of a received header
	// UsedIdxSkew returns how far past the entries it wrote the device
	// moves used.idx on queue q (0 for honesty): the driver then reads
	// entries that were never written, or stale ones.
	UsedIdxSkew func(q int) uint16
}

// inFrame is a frame waiting to be received.
type inFrame struct {
	f   Frame // owned by the device
	raw bool  // deliver the header as is, without resolving offloads
}

// Net is a virtio-net device model. It implements virtio.Transport. All
// methods are safe for concurrent use.
type Net struct {
	cfg Config // as given to New, Features adjusted to what is offered

	mu sync.Mutex // guards everything below down to inMu
	// status is the device status register.
	status uint8
	// driverFeatures is what the driver wrote; features is what is in force
	// once FEATURES_OK (modern) or DRIVER_OK (legacy) was accepted.
	driverFeatures, features uint64
	// guestOffloads are the receive offloads in force: the negotiated guest
	// bits, narrowed by VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET.
	guestOffloads uint64
	mac           [6]byte          // current MAC (config space)
	linkUp        bool             // link status
	announce      bool             // VIRTIO_NET_S_ANNOUNCE pending
	promisc       bool             // receive every unicast frame
	allmulti      bool             // receive every multicast frame
	multicast     map[[6]byte]bool // multicast filter table from VIRTIO_NET_CTRL_MAC_TABLE_SET
	broken        bool             // a driver violation stopped the device until reset
	rings         [3]vq            // rx, tx, ctrl once set up
	queueIRQ      [3]*interrupt    // per-queue interrupts
	configIRQ     *interrupt       // configuration change interrupt
	stats         Stats            // counters
	peer          *Net             // the other end of the wire, if connected
	hostile       *Hostile         // lies to tell, if any
	pending       []inFrame        // resolved frames waiting for receive buffers
	txBuf         []byte           // scratch: a transmitted packet gathered
	segBuf        []byte           // scratch: one segment or checksummed copy
	rxLens        []uint32         // scratch: used lengths of a merged packet
	rxHeads       []uint16         // scratch: heads of a merged packet
	rxFirst       [][]byte         // scratch: buffers of a merged packet's first chain

	txStalled    time.Time     // when the peer first refused the frame now held back
	inMu         sync.Mutex    // guards inbound and peerWaiting; never held while taking mu
	inbound      []inFrame     // frames handed over by a peer or a test
	peerWaiting  bool          // the peer was refused a frame and waits to be woken
	backlogDrops atomic.Uint64 // frames refused because inbound was full

	notifications [3]atomic.Uint64 // Notify calls per queue

	wake    chan struct{}      // wakes the device goroutine
	syncReq chan chan struct{} // Sync requests
	done    chan struct{}      // closed by Close
	stopped sync.WaitGroup     // the device goroutine
	once    sync.Once          // Close runs once
}

var _ virtio.Transport = (*Net)(nil)

// New starts a device model. Close stops it.
func New(cfg Config) (*Net, error) {
	if cfg.Mem == nil {
		return nil, errors.New("devmodel: Config.Mem is nil")
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.WireStall <= 0 {
		cfg.WireStall = DefaultWireStall
	}
	if s := cfg.QueueSize; s < 1 || s > 32768 || s&(s-1) != 0 {
		return nil, fmt.Errorf("devmodel: queue size %d not a power of two up to 32768", s)
	}
	cfg.Features &^= FeatureMQ
	if cfg.Legacy {
		cfg.Features &= 1<<32 - 1
	} else {
		cfg.Features |= virtio.FeatureVersion1
	}
	n := &Net{
		cfg:       cfg,
		mac:       cfg.MAC,
		linkUp:    !cfg.LinkDown,
		promisc:   true, // QEMU starts promiscuous, for compatibility
		configIRQ: newInterrupt(),
		wake:      make(chan struct{}, 1),
		syncReq:   make(chan chan struct{}),
		done:      make(chan struct{}),
	}
	for i := range n.queueIRQ {
		n.queueIRQ[i] = newInterrupt()
	}
	n.stopped.Add(1)
	go n.run()
	return n, nil
}

// Close stops the device goroutine. The Net must not be used afterwards,
// except for Stats.
func (n *Net) Close() error {
	n.once.Do(func() {
		close(n.done)
		n.stopped.Wait()
	})
	return nil
}

// run is the device goroutine: one pass over every queue each time it is
// woken.
func (n *Net) run() {
	defer n.stopped.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.wake:
			n.pass()
		case ch := <-n.syncReq:
			n.pass()
			close(ch)
		}
	}
}

// kick wakes the device goroutine without blocking.
func (n *Net) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Sync returns after the device goroutine has made one full pass over its
// queues that started after the call: everything notified or injected
// before Sync has been processed (or is waiting for receive buffers).
func (n *Net) Sync() {
	ch := make(chan struct{})
	select {
	case n.syncReq <- ch:
		<-ch
	case <-n.done:
	}
}

// pass processes transmit, control and receive work.
func (n *Net) pass() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running() {
		n.dropInboundNotReady()
		return
	}
	n.processTX()
	n.processCtrl()
	n.processRX()
}

// running reports whether the device processes queues: DRIVER_OK set, not
// FAILED, not broken.
func (n *Net) running() bool {
	return n.status&virtio.StatusDriverOK != 0 && n.status&virtio.StatusFailed == 0 && !n.broken
}

// fail records a driver violation that stops the device until reset, and
// tells a modern driver through DEVICE_NEEDS_RESET and a config interrupt
// (virtio 1.2 §2.1.2), as QEMU's virtio_error does.
func (n *Net) fail(err error) {
	n.stats.DriverErrors++
	n.stats.LastError = err
	n.broken = true
	if !n.cfg.Legacy {
		n.status |= virtio.StatusNeedsReset
		n.raiseConfig()
	}
}

// raiseQueue raises queue q's interrupt.
func (n *Net) raiseQueue(q int) {
	n.stats.Interrupts[q]++
	n.queueIRQ[q].fire()
}

// raiseConfig raises the configuration change interrupt, which a device
// sends only once the driver is ready (DRIVER_OK), as QEMU does.
func (n *Net) raiseConfig() {
	if n.status&virtio.StatusDriverOK == 0 {
		return
	}
	n.stats.ConfigInterrupts++
	n.configIRQ.fire()
}

// notifyUsed publishes ring q's used entries and interrupts if the driver
// wants it.
func (n *Net) notifyUsed(q int) {
	r := n.rings[q]
	if h := n.hostile; h != nil && h.UsedIdxSkew != nil {
		r.skew(h.UsedIdxSkew(q))
	}
	r.publish()
	if r.needInterrupt() {
		n.raiseQueue(q)
	} else {
		n.stats.InterruptsSuppressed[q]++
	}
}

// putUsed writes a used element, through the hostile hooks if any.
func (n *Net) putUsed(q int, id uint16, length uint32) {
	uid := uint32(id)
	if h := n.hostile; h != nil {
		if h.UsedID != nil {
			uid = h.UsedID(q, uid)
		}
		if h.UsedLen != nil {
			length = h.UsedLen(q, length)
		}
	}
	n.rings[q].putUsed(id, uid, length)
}

// negotiated reports whether every bit of f is in force.
func (n *Net) negotiated(f uint64) bool { return n.features&f == f }

// hdrLen is the virtio_net_hdr length in force (virtio 1.2 §5.1.6).
func (n *Net) hdrLen() int {
	if n.features&(FeatureMrgRxbuf|virtio.FeatureVersion1) != 0 {
		return HeaderLenMrgBuf
	}
	return HeaderLen
}

// numQueues is 3 with a control queue, else 2.
func (n *Net) numQueues() int {
	if n.cfg.Features&FeatureCtrlVQ != 0 {
		return 3
	}
	return 2
}

// Legacy implements virtio.Transport.
func (n *Net) Legacy() bool { return n.cfg.Legacy }

// DeviceFeatures implements virtio.Transport.
func (n *Net) DeviceFeatures() uint64 { return n.cfg.Features }

// SetDriverFeatures implements virtio.Transport. Writes after FEATURES_OK
// (or, legacy, DRIVER_OK) are ignored, as the features are then fixed.
func (n *Net) SetDriverFeatures(f uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.status&(virtio.StatusFeaturesOK|virtio.StatusDriverOK) != 0 {
		return
	}
	if n.cfg.Legacy {
		f &= 1<<32 - 1
	}
	n.driverFeatures = f
}

// Status implements virtio.Transport.
func (n *Net) Status() uint8 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// SetStatus implements virtio.Transport. Setting FEATURES_OK on a modern
// device is refused (the bit does not read back) when the driver accepted a
// feature that was not offered or one without its prerequisites (virtio 1.2
// §3.1.1, §5.1.3.1). Writing 0 resets the device.
func (n *Net) SetStatus(s uint8) {
	if s == 0 {
		n.Reset()
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.status
	s |= old & virtio.StatusNeedsReset // only a reset clears it
	if !n.cfg.Legacy && s&virtio.StatusFeaturesOK != 0 && old&virtio.StatusFeaturesOK == 0 {
		if err := n.checkFeatures(n.driverFeatures); err != nil {
			n.stats.FeatureRejections++
			n.stats.LastError = err
			s &^= virtio.StatusFeaturesOK
		} else {
			n.setFeatures(n.driverFeatures)
		}
	}
	if s&virtio.StatusDriverOK != 0 && old&virtio.StatusDriverOK == 0 {
		if n.cfg.Legacy {
			f := n.driverFeatures
			if bad := f &^ n.cfg.Features; bad != 0 {
				// QEMU masks a legacy driver's unsupported features.
				n.stats.FeatureRejections++
				n.stats.LastError = fmt.Errorf("devmodel: legacy driver accepted features %#x that were not offered", bad)
				f &= n.cfg.Features
			}
			n.setFeatures(f)
		} else if s&virtio.StatusFeaturesOK == 0 {
			n.status = s
			n.fail(&DriverError{Queue: -1, Head: -1, Err: ErrFeatureViolation, What: "DRIVER_OK without FEATURES_OK"})
			return
		}
	}
	n.status = s
	if n.running() {
		n.kick()
	}
}

// checkFeatures validates what a modern driver accepted.
func (n *Net) checkFeatures(f uint64) error {
	if bad := f &^ n.cfg.Features; bad != 0 {
		return fmt.Errorf("devmodel: driver accepted features %#x that were not offered: %w", bad, ErrFeatureViolation)
	}
	if f&virtio.FeatureVersion1 == 0 {
		// virtio 1.2 §6.1: a driver MUST accept VERSION_1 when offered, and
		// the modern interface is only defined with it.
		return fmt.Errorf("devmodel: modern driver did not accept VERSION_1: %w", ErrFeatureViolation)
	}
	if d := missingDependency(f); d != 0 {
		return fmt.Errorf("devmodel: driver accepted feature %#x without its prerequisite: %w", d, ErrFeatureViolation)
	}
	return nil
}

// guestOffloadBits are the features VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET can
// switch (virtio 1.2 §5.1.6.5.6).
const guestOffloadBits = FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN | FeatureGuestUFO

// setFeatures puts f in force and configures the rings accordingly.
func (n *Net) setFeatures(f uint64) {
	n.features = f
	n.guestOffloads = f & guestOffloadBits
	for _, r := range n.rings {
		if r != nil {
			r.setFeatures(f&virtio.FeatureEventIdx != 0, f&virtio.FeatureIndirectDesc != 0)
		}
	}
}

// Reset implements virtio.Transport: status, features, queues and pending
// frames are cleared; MAC, MTU and link state remain.
func (n *Net) Reset() error {
	n.mu.Lock()
	n.status = 0
	n.driverFeatures, n.features, n.guestOffloads = 0, 0, 0
	n.rings = [3]vq{}
	n.broken = false
	n.announce = false
	n.promisc, n.allmulti, n.multicast = true, false, nil
	n.pending = nil
	n.txStalled = time.Time{}
	peer := n.peer
	n.mu.Unlock()
	n.inMu.Lock()
	n.inbound = nil
	n.peerWaiting = false
	n.inMu.Unlock()
	if peer != nil {
		peer.kick() // it may have been waiting for room in inbound
	}
	return nil
}

// configSpace renders the device configuration (virtio 1.2 §5.1.4).
func (n *Net) configSpace() [configSpaceSize]byte {
	var c [configSpaceSize]byte
	copy(c[ConfigMAC:], n.mac[:])
	var st uint16
	if n.linkUp {
		st |= StatusLinkUp
	}
	if n.announce {
		st |= StatusAnnounce
	}
	binary.LittleEndian.PutUint16(c[ConfigStatus:], st)
	binary.LittleEndian.PutUint16(c[ConfigMaxPairs:], 1)
	binary.LittleEndian.PutUint16(c[ConfigMTU:], n.cfg.MTU)
	return c
}

// ReadConfig implements virtio.Transport. Bytes past the modelled fields
// read as zero.
func (n *Net) ReadConfig(off int, b []byte) {
	n.mu.Lock()
	c := n.configSpace()
	n.mu.Unlock()
	for i := range b {
		b[i] = 0
		if o := off + i; o >= 0 && o < len(c) {
			b[i] = c[o]
		}
	}
}

// WriteConfig implements virtio.Transport. Only the MAC is writable, and
// only on a legacy device without CTRL_MAC_ADDR (as in QEMU); other writes
// are ignored.
func (n *Net) WriteConfig(off int, b []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.cfg.Legacy || n.features&FeatureCtrlMACAddr != 0 {
		return
	}
	for i, v := range b {
		if o := off + i; o >= ConfigMAC && o < ConfigMAC+6 {
			n.mac[o-ConfigMAC] = v
		}
	}
}

// NumQueues implements virtio.Transport.
func (n *Net) NumQueues() int { return n.numQueues() }

// QueueMaxSize implements virtio.Transport.
func (n *Net) QueueMaxSize(q int) int {
	if q < 0 || q >= n.numQueues() {
		return 0
	}
	return n.cfg.QueueSize
}

// SetupQueue implements virtio.Transport.
func (n *Net) SetupQueue(q int, size int, desc, avail, used uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if q < 0 || q >= n.numQueues() {
		return fmt.Errorf("devmodel: queue %d does not exist", q)
	}
	if n.status&virtio.StatusDriverOK != 0 {
		return fmt.Errorf("devmodel: queue %d set up after DRIVER_OK", q)
	}
	if size > n.cfg.QueueSize || (n.cfg.Legacy && size != n.cfg.QueueSize) {
		return fmt.Errorf("devmodel: queue %d size %d, device size %d", q, size, n.cfg.QueueSize)
	}
	f := n.features
	if n.cfg.Legacy {
		f = n.driverFeatures
	}
	var r vq
	var err error
	if f&virtio.FeatureRingPacked != 0 {
		// Modern only: a legacy device has 32 feature bits. The three
		// addresses are the descriptor ring and the driver and device
		// event suppression areas.
		r, err = newPackedRing(q, n.cfg.Mem, size, desc, avail, used)
	} else {
		r, err = newRing(q, n.cfg.Mem, size, desc, avail, used, n.cfg.Legacy)
	}
	if err != nil {
		return err
	}
	r.setFeatures(f&virtio.FeatureEventIdx != 0, f&virtio.FeatureIndirectDesc != 0)
	n.rings[q] = r
	return nil
}

// Notify implements virtio.Transport.
// It does not take the device lock, so a driver never waits for a pass
// in progress to notify.
func (n *Net) Notify(q int) {
	if q >= 0 && q < n.numQueues() {
		n.notifications[q].Add(1)
	}
	n.kick()
}

// Interrupts implements virtio.Transport. The same Interrupt values are
// returned on every call.
func (n *Net) Interrupts(num int) ([]virtio.Interrupt, virtio.Interrupt, error) {
	if num < 0 || num > n.numQueues() {
		return nil, nil, fmt.Errorf("devmodel: %d queue interrupts asked, device has %d queues", num, n.numQueues())
	}
	qs := make([]virtio.Interrupt, num)
	for i := range qs {
		qs[i] = n.queueIRQ[i]
	}
	return qs, n.configIRQ, nil
}

// Stats returns a snapshot of the counters.
func (n *Net) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.RxDropBacklog += n.backlogDrops.Load()
	for i := range s.Notifications {
		s.Notifications[i] = n.notifications[i].Load()
	}
	return s
}

// Features returns the features in force (zero before negotiation).
func (n *Net) Features() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.features
}

// RxMode reports the receive filter set through the control queue.
func (n *Net) RxMode() (promisc, allmulti bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.promisc, n.allmulti
}

// MAC returns the current MAC address.
func (n *Net) MAC() [6]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mac
}

// SetLink changes the link state. With STATUS negotiated a change raises a
// configuration interrupt (virtio 1.2 §5.1.4.2). While the link is down,
// frames in both directions are dropped, as QEMU does.
func (n *Net) SetLink(up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.linkUp == up {
		return
	}
	n.linkUp = up
	if n.features&FeatureStatus != 0 {
		n.raiseConfig()
	}
}

// Announce asks the driver to announce itself (VIRTIO_NET_S_ANNOUNCE and a
// configuration interrupt), as after a migration; the driver acknowledges
// with VIRTIO_NET_CTRL_ANNOUNCE_ACK. It reports false when GUEST_ANNOUNCE
// is not negotiated.
func (n *Net) Announce() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.negotiated(FeatureGuestAnnounce|FeatureCtrlVQ) || n.status&virtio.StatusDriverOK == 0 {
		return false
	}
	n.announce = true
	n.raiseConfig()
	return true
}

// Break stops the device as an error it cannot go on from would: it
// processes nothing more until reset, and on a modern interface it sets
// DEVICE_NEEDS_RESET and raises a configuration interrupt, as QEMU's
// virtio_error does. It is how tests exercise a driver's recovery.
func (n *Net) Break() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fail(&DriverError{Queue: -1, Head: -1, Err: ErrBroken})
}

// SetHostile installs (or, with nil, removes) lies for the device to tell.
func (n *Net) SetHostile(h *Hostile) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hostile = h
}

// interrupt is a channel-backed virtio.Interrupt: firing stores at most one
// pending event, so an interrupt raised while nobody waits is kept and
// several raised meanwhile merge into one, as a level-triggered line would.
type interrupt struct {
	ch chan struct{} // capacity 1: the pending event
}

// newInterrupt returns an interrupt with nothing pending.
func newInterrupt() *interrupt { return &interrupt{ch: make(chan struct{}, 1)} }

// fire makes the interrupt pending.
func (i *interrupt) fire() {
	select {
	case i.ch <- struct{}{}:
	default:
	}
}

// Wait implements virtio.Interrupt.
func (i *interrupt) Wait(ctx context.Context) error {
	select {
	case <-i.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
