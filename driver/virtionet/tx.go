package virtionet

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// txEntry is what the driver remembers about a chain in flight.
type txEntry struct {
	pkt    *stack.PacketBuffer // the packet whose memory the chain points at; one reference held
	slot   uint16              // header slot the chain's first descriptor points at
	bounce int16               // bounce buffer holding the packet's bytes, or -1
}

// Bounce buffers hold a copy of a packet whose chain of views would be
// longer than the queue takes (a TSO segment built from hundreds of small
// writes, or a 64 KiB one on a small queue): two descriptors instead.
const (
	bounceBuffers = 4
	bounceSize    = 65536 + hdrStride // the largest frame netstack builds (gsoMaxSize plus headers)
)

// txRing is the transmit side. WritePackets (any goroutine) and the TX
// completion loop share it under mu.
type txRing struct {
	mu      sync.Mutex      // guards everything below except the constant fields
	q       virtqueue.Queue // the TX virtqueue
	dma     virtqueue.DMA   // translates packet memory
	hdrLen  int             // virtio header size (10 or 12); constant
	csum    bool            // CSUM negotiated: partial checksums may be sent; constant
	hostECN bool            // HOST_ECN negotiated; constant
	// anyLayout says the virtio header may share a descriptor with packet
	// bytes (VERSION_1 or legacy ANY_LAYOUT, virtio 1.2 §2.7.4); constant.
	anyLayout bool
	hdrMem    []byte             // header slots, hdrStride bytes each, in DMA memory
	hdrPhys   uint64             // physical address of hdrMem
	freeSlot  []uint16           // header slots not in use
	bounceMem []byte             // bounceBuffers contiguous buffers of bounceSize, nil until first needed
	bouncePhy uint64             // physical address of bounceMem
	freeBnc   []int16            // bounce buffers not in use
	inflight  []txEntry          // per head id: the packet in flight there
	chain     []virtqueue.Buffer // scratch chain for Add
	space     chan struct{}      // closed (and replaced) when completions freed descriptors while writers wait
	waiters   int                // writers waiting in waitSpace; TX interrupts are on while > 0
	pending   int                // chains posted since the last Kick
	fullWait  time.Duration      // how long Write waits for room in a full ring; constant
	dead      bool               // the device failed for good (recover): packets are dropped
	// stalled is set when a writer waited fullWait for room and the device
	// returned nothing meanwhile: later writers do not wait (each would
	// block netstack for fullWait) until the device returns a chain.
	stalled bool
	notify  func()    // notifies the device of new chains; set by Open
	faulted func()    // told of a ring violation that loses chains; set by Open (Device.requestReset)
	c       *counters // shared counters
}

// hdrStride is the size of a header slot: the virtio header and, when the
// layout allows, a copy of the packet's protocol headers (Ethernet, IP,
// TCP with options: at most 14+60+60 bytes), so that a small packet takes
// two descriptors instead of three. 4096 is a multiple of it, so a slot
// never crosses a page.
const hdrStride = 256

// newTxRing prepares the TX side for q, with one header slot per
// descriptor.
func newTxRing(q virtqueue.Queue, dma virtqueue.DMA, features uint64, c *counters) (*txRing, error) {
	n := q.Size()
	mem, phys, err := dma.Alloc(n*hdrStride, pageSize)
	if err != nil {
		return nil, fmt.Errorf("virtionet: allocating %d TX header slots: %w", n, err)
	}
	t := &txRing{
		q:         q,
		dma:       dma,
		hdrLen:    headerLen(features),
		csum:      features&FeatureCsum != 0,
		hostECN:   features&FeatureHostECN != 0,
		anyLayout: features&(virtio.FeatureVersion1|virtio.FeatureAnyLayout) != 0,
		hdrMem:    mem,
		hdrPhys:   phys,
		freeSlot:  make([]uint16, n),
		inflight:  make([]txEntry, n),
		chain:     make([]virtqueue.Buffer, 0, 64),
		space:     make(chan struct{}),
		fullWait:  defaultTxFullWait,
		notify:    func() {},
		faulted:   func() {},
		c:         c,
	}
	for i := range t.freeSlot {
		t.freeSlot[i] = uint16(n - 1 - i)
	}
	q.DisableInterrupts() // until a writer waits for room: see waitSpace
	c.txRingSize.Store(uint64(n))
	return t, nil
}

// defaultTxFullWait bounds how long a writer waits for the device to
// return TX buffers when the ring is full. netstack has no way to be told
// "try again later" that does not lose the packet (its queueing
// disciplines drop what the link refuses), so a short wait is the
// backpressure that keeps TCP from falling back on retransmission
// timeouts; the bound keeps a stalled device from blocking netstack.
const defaultTxFullWait = 50 * time.Millisecond

// Write posts the packets and notifies the device. When the ring is full
// it publishes what it posted, waits (up to fullWait) for the device to
// return buffers, and carries on. It returns how many packets were
// consumed (posted, or dropped and counted); if the ring stayed full it
// returns fewer than asked, and ErrWouldBlock when none was taken, so the
// stack sees the backpressure.
func (t *txRing) Write(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		t.c.txDropFailed.Add(uint64(len(pkts)))
		return len(pkts), nil
	}
	// Completed chains are taken back here, as each write starts, rather
	// than on an interrupt per packet: see waitSpace.
	t.reclaimLocked()
	n := 0
	var deadline time.Time
	for n < len(pkts) {
		err := t.post(pkts[n])
		if err == nil {
			n++
			continue
		}
		// Completions may be waiting in the used ring: take them back
		// and retry before waiting.
		if t.reclaimLocked() > 0 {
			continue
		}
		t.c.txRingFull.Add(1)
		t.publish()
		if t.stalled {
			break
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(t.fullWait)
		}
		if !t.waitSpace(deadline) {
			// A whole wait without one completion: the device has
			// stalled.
			t.stalled = true
			t.c.txStalls.Add(1)
			break
		}
	}
	t.publish()
	t.c.txRingInFlight.Store(uint64(t.q.InFlight()))
	if n == 0 {
		return 0, &tcpip.ErrWouldBlock{}
	}
	return n, nil
}

// publish makes posted chains visible and notifies the device if it asks.
func (t *txRing) publish() {
	if t.pending == 0 {
		return
	}
	t.pending = 0
	if t.q.Kick() {
		t.c.txNotifies.Add(1)
		t.notify()
	} else {
		t.c.txKicksSuppressed.Add(1)
	}
}

// waitSpace waits, with mu released, until completions were reclaimed or
// the deadline passed; it reports whether to try again.
//
// TX interrupts are on only while a writer waits here: the rest of the
// time completed chains are reclaimed by the next Write (as Linux's
// virtio_net does without TX NAPI), which saves an interrupt, a wake-up and
// a trip through the poller per packet sent. The cost is that the last
// packets sent before the link goes quiet keep their memory until the next
// write; the ring's size bounds that.
func (t *txRing) waitSpace(deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t.waiters++
	defer t.leaveWait()
	// Completions that arrived while interrupts were off are announced by
	// no interrupt: take them now.
	if t.waiters == 1 && t.q.EnableInterrupts() && t.reclaimLocked() > 0 {
		return true
	}
	space := t.space
	t.mu.Unlock()
	defer t.mu.Lock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-space:
	case <-timer.C: // one last reclaim and post attempt
	}
	return true
}

// leaveWait ends a waitSpace; the last waiter out turns TX interrupts off.
func (t *txRing) leaveWait() {
	t.waiters--
	if t.waiters == 0 {
		t.q.DisableInterrupts()
	}
}

// post puts one packet on the ring. A nil error or a drop (counted) both
// consume the packet; ErrFull leaves it to the caller.
func (t *txRing) post(pkt *stack.PacketBuffer) error {
	if len(t.freeSlot) == 0 {
		return virtqueue.ErrFull
	}
	slot := t.freeSlot[len(t.freeSlot)-1]

	hdr := txHeader(&pkt.GSOOptions, pkt.HeaderSize(), pkt.Data().Size(), t.csum)
	if t.hostECN {
		markECN(&hdr, pkt.TransportHeader().Slice())
	}
	// The protocol headers are copied next to the virtio header when the
	// layout allows it; the payload is never copied.
	copyLen := 0
	if t.anyLayout && pkt.HeaderSize() <= hdrStride-t.hdrLen {
		copyLen = pkt.HeaderSize()
	}
	hb := t.hdrMem[int(slot)*hdrStride : int(slot)*hdrStride+t.hdrLen+copyLen]
	hdr.Encode(hb)
	t.chain = append(t.chain[:0], virtqueue.Buffer{
		Addr: t.hdrPhys + uint64(slot)*hdrStride,
		Len:  uint32(len(hb)),
	})

	// The packet's own views, split where Go heap pages end. A chain that
	// grows longer than the queue takes stops here and goes out bounced.
	size := copyLen
	tooLong, maxChain := false, t.q.Size()
	views, off := pkt.AsViewList()
walk:
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		b = b[off:]
		off = 0
		if copyLen > 0 {
			c := copy(hb[len(hb)-copyLen:], b)
			copyLen -= c
			b = b[c:]
		}
		for len(b) > 0 {
			if len(t.chain) == maxChain {
				tooLong = true
				break walk
			}
			m := min(len(b), pageRemain(b))
			phys, err := t.dma.Phys(b[:m])
			if err != nil {
				t.c.txDropPhysError.Add(1)
				return nil
			}
			t.chain = append(t.chain, virtqueue.Buffer{Addr: phys, Len: uint32(m)})
			size += m
			b = b[m:]
		}
	}
	bounce := int16(-1)
	var head uint16
	err := virtqueue.ErrChainTooLong
	if !tooLong {
		head, err = t.q.Add(t.chain)
	}
	if errors.Is(err, virtqueue.ErrChainTooLong) {
		head, bounce, size, err = t.postBounced(pkt)
	}
	switch {
	case errors.Is(err, virtqueue.ErrFull):
		return err
	case err != nil:
		t.c.txDropTooManySegs.Add(1)
		return nil
	}
	t.freeSlot = t.freeSlot[:len(t.freeSlot)-1]
	// The chain points into the packet's memory until the device returns
	// it: hold a reference until then.
	t.inflight[head] = txEntry{pkt: pkt.IncRef(), slot: slot, bounce: bounce}
	t.pending++
	t.c.txPackets.Add(1)
	t.c.txBytes.Add(uint64(size))
	if hdr.GSOType != GSONone {
		t.c.txGSOPackets.Add(1)
	}
	if hdr.Flags&HdrFlagNeedsCsum != 0 {
		t.c.txCsumOffload.Add(1)
	}
	return nil
}

// postBounced posts pkt as its header slot (already t.chain[0]; the
// virtio header alone) and a bounce buffer holding a copy of the whole
// frame, and returns the head, the bounce buffer and the frame's size.
// ErrFull means no bounce buffer is free until a completion; another
// error, that none can be had.
func (t *txRing) postBounced(pkt *stack.PacketBuffer) (uint16, int16, int, error) {
	if t.bounceMem == nil {
		mem, phys, err := t.dma.Alloc(bounceBuffers*bounceSize, pageSize)
		if err != nil {
			return 0, -1, 0, fmt.Errorf("virtionet: allocating TX bounce buffers: %w", err)
		}
		t.bounceMem, t.bouncePhy = mem, phys
		for i := bounceBuffers - 1; i >= 0; i-- {
			t.freeBnc = append(t.freeBnc, int16(i))
		}
	}
	size := pkt.Size()
	if size > bounceSize {
		return 0, -1, 0, fmt.Errorf("virtionet: %d-byte frame: %w", size, virtqueue.ErrChainTooLong)
	}
	if len(t.freeBnc) == 0 {
		return 0, -1, 0, virtqueue.ErrFull
	}
	b := t.freeBnc[len(t.freeBnc)-1]
	off := int(b) * bounceSize
	dst := t.bounceMem[off : off+size]
	n := 0
	views, voff := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		src := v.AsSlice()
		if voff >= len(src) {
			voff -= len(src)
			continue
		}
		n += copy(dst[n:], src[voff:])
		voff = 0
	}
	t.chain = append(t.chain[:1], virtqueue.Buffer{Addr: t.bouncePhy + uint64(off), Len: uint32(n)})
	t.chain[0].Len = uint32(t.hdrLen)
	head, err := t.q.Add(t.chain)
	if err != nil {
		return 0, -1, 0, err
	}
	t.freeBnc = t.freeBnc[:len(t.freeBnc)-1]
	t.c.txBounced.Add(1)
	return head, b, n, nil
}

// ReleaseSent is what the TX completion loop does on each interrupt:
// release the packets whose chains the device returned (sent, or refused
// and counted), and wake every writer waiting for room. It returns how
// many it released.
func (t *txRing) ReleaseSent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reclaimLocked()
}

func (t *txRing) reclaimLocked() int {
	n := 0
	defer func() {
		if n > 0 {
			t.stalled = false
		}
		if n > 0 && t.waiters > 0 {
			// Every waiting writer retries, not only the first.
			close(t.space)
			t.space = make(chan struct{})
		}
	}()
	for {
		head, _, ok, err := t.q.Pop()
		if !ok && err == nil {
			break
		}
		if err != nil {
			if !errors.Is(err, virtqueue.ErrBadLength) {
				// The chain behind it stays in flight until a reset.
				t.c.txDeviceErrors.Add(1)
				t.faulted()
				continue
			}
			// The device wrote a length into a read-only chain;
			// the head is valid and the packet is done all the same.
			t.c.txBadLength.Add(1)
		}
		t.complete(head)
		n++
	}
	t.c.txRingInFlight.Store(uint64(t.q.InFlight()))
	return n
}

// complete releases the packet of a returned chain and its header slot.
func (t *txRing) complete(head uint16) {
	e := &t.inflight[head]
	if e.pkt == nil {
		// The queue vouched for head, so this would be a driver bug;
		// count it rather than crash.
		t.c.txDeviceErrors.Add(1)
		return
	}
	e.pkt.DecRef()
	t.freeSlot = append(t.freeSlot, e.slot)
	if e.bounce >= 0 {
		t.freeBnc = append(t.freeBnc, e.bounce)
	}
	*e = txEntry{}
	t.c.txCompleted.Add(1)
}

// Detach releases every packet still in flight after a device reset.
func (t *txRing) Detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.detachLocked()
}

func (t *txRing) detachLocked() {
	for {
		head, ok := t.q.DetachUnused()
		if !ok {
			break
		}
		t.complete(head)
	}
}

// restartLocked puts the ring's interrupt state back after the queue was
// reset (which leaves interrupts on) and lets waiting writers retry on the
// empty ring.
func (t *txRing) restartLocked() {
	t.pending, t.stalled = 0, false
	if t.waiters == 0 {
		t.q.DisableInterrupts()
		return
	}
	t.q.EnableInterrupts()
	close(t.space)
	t.space = make(chan struct{})
}

// postFault posts a chain a device must refuse: a single device-writable
// buffer (a header slot), where a transmit chain starts with the
// device-readable virtio header (virtio 1.2 §5.1.6.2). See
// Device.InjectTxFault.
func (t *txRing) postFault() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return errors.New("virtionet: the device has failed")
	}
	if len(t.freeSlot) == 0 {
		return virtqueue.ErrFull
	}
	slot := t.freeSlot[len(t.freeSlot)-1]
	head, err := t.q.Add([]virtqueue.Buffer{{Addr: t.hdrPhys + uint64(slot)*hdrStride, Len: uint32(t.hdrLen), Writable: true}})
	if err != nil {
		return err
	}
	t.freeSlot = t.freeSlot[:len(t.freeSlot)-1]
	// An empty packet stands in for the one complete and Detach release.
	t.inflight[head] = txEntry{pkt: stack.NewPacketBuffer(stack.PacketBufferOptions{}), slot: slot, bounce: -1}
	t.pending++
	t.publish()
	return nil
}
