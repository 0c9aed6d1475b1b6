package devmodel

import "fmt"

// Inject hands a frame to the device as if it came from the wire, with a
// virtio header describing its offloads (NEEDS_CSUM, GSO). The device
// resolves the offloads the driver did not negotiate, as for a peer's frame.
// The data is copied. A frame that finds the device's queue full (more than
// Config.RxBacklog plus a margin waiting) is dropped and counted.
func (n *Net) Inject(f Frame) {
	f.Data = append([]byte(nil), f.Data...)
	n.enqueue(inFrame{f: f}, n.cfg.RxBacklog+inboundSlack, false)
}

// InjectRaw hands a frame to the device to be written into the receive
// queue with exactly this header (num_buffers aside), whatever the driver
// negotiated: for testing the driver against headers it did not ask for.
func (n *Net) InjectRaw(f Frame) {
	f.Data = append([]byte(nil), f.Data...)
	n.enqueue(inFrame{f: f, raw: true}, n.cfg.RxBacklog+inboundSlack, false)
}

// enqueue queues a frame for the device goroutine and wakes it. When limit
// frames are already waiting it refuses the frame: a test's frame is then
// dropped and counted, a peer's (fromPeer) is left for the peer to retry,
// and the peer is woken once there is room again. It takes only inMu, so a
// peer's goroutine may call it while holding its own mu.
func (n *Net) enqueue(f inFrame, limit int, fromPeer bool) bool {
	n.inMu.Lock()
	if len(n.inbound) >= limit {
		if fromPeer {
			n.peerWaiting = true
		}
		n.inMu.Unlock()
		if !fromPeer {
			n.backlogDrops.Add(1)
		}
		return false
	}
	n.inbound = append(n.inbound, f)
	n.inMu.Unlock()
	n.kick()
	return true
}

// takeInbound removes and returns up to max of the frames waiting in
// inbound (all of them when max < 0), and wakes a peer that was refused.
// n.mu is held.
func (n *Net) takeInbound(max int) []inFrame {
	n.inMu.Lock()
	k := len(n.inbound)
	if max >= 0 && max < k {
		k = max
	}
	in := make([]inFrame, k)
	copy(in, n.inbound)
	n.inbound = n.inbound[:copy(n.inbound, n.inbound[k:])]
	wake := n.peerWaiting && k > 0
	if wake {
		n.peerWaiting = false
	}
	n.inMu.Unlock()
	if wake && n.peer != nil {
		n.peer.kick()
	}
	return in
}

// dropInboundNotReady drops frames that arrive before DRIVER_OK (or while
// the device is broken).
func (n *Net) dropInboundNotReady() {
	n.stats.RxDropNotReady += uint64(len(n.takeInbound(-1)) + len(n.pending))
	n.pending = nil
}

// rxResult is what became of one frame offered to the receive queue.
type rxResult int

const (
	rxDone      rxResult = iota // written into buffers, or dropped and counted
	rxNoBuffers                 // not enough buffers posted: try again later
	rxBroken                    // driver violation: the device stopped
)

// processRX moves frames from the wire into the backlog, resolving their
// offloads for what the driver negotiated, and writes the backlog into the
// receive queue, until the wire is empty or the driver's buffers run out.
func (n *Net) processRX() {
	for {
		took := n.pullInbound()
		if !n.deliverPending() || took == 0 {
			return
		}
	}
}

// pullInbound takes frames from the wire into the backlog and returns how
// many it took. It takes only what the backlog has room for, so that a
// connected sender waits (as QEMU's transmit waits for its backend) rather
// than having its frames dropped.
func (n *Net) pullInbound() int {
	room := -1
	if n.cfg.RxBacklog > 0 {
		room = max(n.cfg.RxBacklog-len(n.pending), 0)
		if room == 0 {
			return 0
		}
	}
	in := n.takeInbound(room)
	for _, in := range in {
		if in.raw {
			n.pending = append(n.pending, in)
			continue
		}
		err := n.resolve(in.f, n.guestOffloads, func(f Frame) {
			// Only the frame's own data (owned by the device) may be kept;
			// segments and checksummed copies live in scratch memory.
			if len(f.Data) > 0 && (len(in.f.Data) == 0 || &f.Data[0] != &in.f.Data[0]) {
				f.Data = append([]byte(nil), f.Data...)
			}
			n.pending = append(n.pending, inFrame{f: f, raw: true})
		})
		if err != nil {
			n.stats.RxDropOffload++
			n.stats.LastError = err
		}
	}
	return len(in)
}

// deliverPending writes the backlog into the receive queue. It reports
// false when frames are left waiting for buffers (or the device broke).
func (n *Net) deliverPending() bool {
	r := n.rings[QueueRX]
	for {
		seen := uint64(0)
		if r != nil {
			seen = r.availMark()
		}
		i := 0
		for ; i < len(n.pending); i++ {
			res := n.receive(n.pending[i].f)
			if res == rxBroken {
				n.pending = nil
				return false
			}
			if res == rxNoBuffers {
				if n.cfg.RxBacklog > 0 {
					break
				}
				n.stats.RxDropNoBuffers++
			}
		}
		n.pending = n.pending[:copy(n.pending, n.pending[i:])]
		if r == nil {
			return len(n.pending) == 0
		}
		// Ask to hear about new buffers, then look once more: buffers added
		// in between would otherwise not be noticed.
		r.setNotify(true)
		if len(n.pending) == 0 {
			return true
		}
		if r.availMark() == seen {
			return false
		}
	}
}

// receive writes one frame with its header into the receive queue: with
// MRG_RXBUF across as many buffers as needed (virtio 1.2 §5.1.6.4), without
// it into one chain that must hold it all.
func (n *Net) receive(f Frame) rxResult {
	if !n.linkUp {
		n.stats.RxDropLinkDown++
		return rxDone
	}
	if !n.accept(f.Data) {
		n.stats.RxDropFiltered++
		return rxDone
	}
	if max := n.maxFrame(); max > 0 && f.Hdr.GSOType&^GSOECN == GSONone && len(f.Data) > max {
		// virtio 1.2 §5.1.6.3.1: no non-GSO packet over the MTU.
		n.stats.RxDropTooBig++
		return rxDone
	}
	r := n.rings[QueueRX]
	if r == nil {
		n.stats.RxDropNotReady++
		return rxDone
	}
	hl := n.hdrLen()
	h := f.Hdr
	h.NumBuffers = 1
	if hk := n.hostile; hk != nil && hk.RxHeader != nil {
		lie := h // a copy, so that h itself stays on the stack
		hk.RxHeader(&lie)
		h = lie
	}
	var hb [HeaderLenMrgBuf]byte
	total := hl + len(f.Data)
	if !n.negotiated(FeatureMrgRxbuf) {
		c, ok, err := r.pop()
		if err != nil {
			n.fail(err)
			return rxBroken
		}
		if !ok {
			return rxNoBuffers
		}
		if c.writeLen == 0 {
			n.fail(&DriverError{Queue: QueueRX, Head: int(c.head), Err: ErrNoBuffers, What: "receive chain without a writable buffer"})
			return rxBroken
		}
		if c.writeLen < uint64(total) {
			// QEMU leaves the buffer posted and drops the packet.
			r.rewind(1)
			n.stats.RxDropTooSmall++
			n.stats.LastError = fmt.Errorf("devmodel: receive chain %d of %d bytes for a %d-byte packet", c.head, c.writeLen, total)
			return rxDone
		}
		if hk := n.hostile; hk != nil && hk.NumBuffers != nil && hl == HeaderLenMrgBuf {
			h.NumBuffers = hk.NumBuffers(1)
		}
		h.marshal(hb[:hl])
		scatter(c.writable, 0, hb[:hl])
		scatter(c.writable, hl, f.Data)
		n.putUsed(QueueRX, c.head, uint32(total))
		n.notifyUsed(QueueRX)
		n.stats.RxBuffers++
		n.countRx(f.Data)
		return rxDone
	}

	heads, lens := n.rxHeads[:0], n.rxLens[:0]
	first := n.rxFirst[:0] // the first chain's buffers, where num_buffers goes
	data := f.Data
	for off := 0; off < total; {
		c, ok, err := r.pop()
		if err != nil {
			n.fail(err)
			return rxBroken
		}
		if !ok {
			// Give back what was taken; what was written there is the
			// device's to overwrite.
			r.rewind(len(heads))
			n.rxHeads, n.rxLens = heads, lens
			if len(heads) >= r.slots() {
				// Even a ring full of buffers cannot hold this frame:
				// waiting would block the queue for ever.
				n.stats.RxDropTooSmall++
				n.stats.LastError = fmt.Errorf("devmodel: a %d-byte packet does not fit in a full receive ring", total)
				return rxDone
			}
			return rxNoBuffers
		}
		if c.writeLen == 0 {
			n.fail(&DriverError{Queue: QueueRX, Head: int(c.head), Err: ErrNoBuffers, What: "receive chain without a writable buffer"})
			return rxBroken
		}
		take := int(min(c.writeLen, uint64(total-off)))
		if off == 0 {
			if take < hl {
				n.fail(&DriverError{Queue: QueueRX, Head: int(c.head), Err: ErrHeaderTooShort, What: fmt.Sprintf("first buffer %d bytes", c.writeLen)})
				return rxBroken
			}
			first = append(first, c.writable...)
			scatter(first, hl, data[:take-hl])
			data = data[take-hl:]
		} else {
			scatter(c.writable, 0, data[:take])
			data = data[take:]
		}
		heads = append(heads, c.head)
		lens = append(lens, uint32(take))
		off += take
	}
	h.NumBuffers = uint16(len(heads))
	if hk := n.hostile; hk != nil && hk.NumBuffers != nil {
		h.NumBuffers = hk.NumBuffers(h.NumBuffers)
	}
	h.marshal(hb[:hl])
	scatter(first, 0, hb[:hl])
	for i, id := range heads {
		n.putUsed(QueueRX, id, lens[i])
	}
	n.notifyUsed(QueueRX)
	n.stats.RxBuffers += uint64(len(heads))
	n.countRx(f.Data)
	n.rxHeads, n.rxLens, n.rxFirst = heads, lens, first
	return rxDone
}

// countRx counts a frame written into receive buffers.
func (n *Net) countRx(data []byte) {
	n.stats.RxFrames++
	n.stats.RxBytes += uint64(len(data))
}

// accept applies the receive filter: QEMU starts promiscuous; otherwise
// unicast frames must be for our MAC and multicast ones need all-multicast
// or an entry in the table. Broadcast always passes.
func (n *Net) accept(frame []byte) bool {
	if n.promisc || len(frame) < 6 {
		return true
	}
	var dst [6]byte
	copy(dst[:], frame)
	if dst[0]&1 == 0 {
		return dst == n.mac
	}
	if dst == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} || n.allmulti {
		return true
	}
	return n.multicast[dst]
}

// scatter copies src into bufs starting at byte off of their concatenation
// and returns how many bytes were copied.
func scatter(bufs [][]byte, off int, src []byte) int {
	n := 0
	for _, b := range bufs {
		if len(src) == 0 {
			break
		}
		if off >= len(b) {
			off -= len(b)
			continue
		}
		k := copy(b[off:], src)
		off = 0
		src = src[k:]
		n += k
	}
	return n
}
