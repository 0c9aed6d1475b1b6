package devmodel

import (
	"errors"
	"fmt"
	"time"
)

// processTX drains the transmit queue. Notifications are suppressed while
// draining and the queue is checked once more after re-enabling them, so a
// chain made available in between is never left behind (the device half of
// virtio 1.2 §2.7.10, as QEMU's virtio_net_flush_tx loop does).
func (n *Net) processTX() {
	r := n.rings[QueueTX]
	if r == nil {
		return
	}
	for {
		r.setNotify(false)
		done := 0
		for {
			c, ok, err := r.pop()
			if err != nil {
				n.fail(err)
				return
			}
			if !ok {
				break
			}
			if err := n.transmitChain(c); err != nil {
				if errors.Is(err, errWireBusy) {
					// Leave the chain posted; the peer wakes us when it
					// takes frames again.
					r.rewind(1)
					if done > 0 {
						n.notifyUsed(QueueTX)
					}
					r.setNotify(true)
					return
				}
				n.fail(err)
				return
			}
			// A transmit buffer is only read: QEMU returns it with len 0.
			n.putUsed(QueueTX, c.head, 0)
			done++
		}
		if done > 0 {
			n.notifyUsed(QueueTX)
		}
		r.setNotify(true)
		if !r.pending() {
			return
		}
	}
}

// Wire queueing between connected devices.
const (
	// wireQueue is how many frames may wait between a sender and a
	// connected receiver's goroutine before the sender holds back.
	wireQueue = 256
	// DefaultWireStall is how long a sender holds a frame back before
	// dropping it, for a receiver whose driver stopped taking frames.
	DefaultWireStall = 100 * time.Millisecond
)

// errWireBusy reports that the peer cannot take a frame yet.
var errWireBusy = errors.New("devmodel: peer busy")

// transmitChain handles one transmit chain. A returned error is a ring
// protocol violation; a bad header only drops the packet.
func (n *Net) transmitChain(c *chain) (err error) {
	defer func() {
		if !errors.Is(err, errWireBusy) {
			n.stats.TxPackets++
		}
	}()
	if len(c.readable) == 0 {
		return &DriverError{Queue: QueueTX, Head: int(c.head), Err: ErrNoBuffers, What: "transmit chain without a readable buffer"}
	}
	n.txBuf = c.gather(n.txBuf)
	hl := n.hdrLen()
	if len(n.txBuf) < hl {
		return &DriverError{Queue: QueueTX, Head: int(c.head), Err: ErrHeaderTooShort, What: fmt.Sprintf("%d bytes, header %d", len(n.txBuf), hl)}
	}
	h, _ := parseHeader(n.txBuf, hl)
	h.NumBuffers = 0
	frame := n.txBuf[hl:]
	if err := n.checkTxHeader(h, frame); err != nil {
		n.stats.TxHeaderErrors++
		n.stats.LastError = err
		return nil
	}
	if !n.linkUp {
		n.stats.TxDropLinkDown++
		return nil
	}
	if peer := n.peer; peer != nil {
		f := inFrame{f: Frame{Hdr: h, Data: append([]byte(nil), frame...)}}
		if !peer.enqueue(f, wireQueue, true) {
			if n.txStalled.IsZero() {
				n.txStalled = time.Now()
				time.AfterFunc(n.cfg.WireStall, n.kick)
			}
			if time.Since(n.txStalled) < n.cfg.WireStall {
				return errWireBusy
			}
			// The receiver has not moved for too long (its driver may be
			// waiting on us): behave as a wire with a finite queue, and
			// go on dropping until it takes a frame again.
			n.stats.TxDropWireFull++
			return nil
		}
		n.txStalled = time.Time{}
		n.countTx(frame)
		return nil
	}
	if n.cfg.Capture == nil {
		n.countTx(frame)
		return nil
	}
	rerr := n.resolve(Frame{Hdr: h, Data: frame}, n.cfg.CaptureFeatures, func(f Frame) {
		n.countTx(f.Data)
		f.Data = append([]byte(nil), f.Data...)
		n.cfg.Capture(f)
	})
	if rerr != nil {
		n.stats.TxHeaderErrors++
		n.stats.LastError = rerr
	}
	return nil
}

// countTx counts a frame put on the wire.
func (n *Net) countTx(frame []byte) {
	n.stats.TxFrames++
	n.stats.TxBytes += uint64(len(frame))
}

// checkTxHeader checks that a transmitted header only uses offloads the
// driver negotiated (virtio 1.2 §5.1.6.2.1).
func (n *Net) checkTxHeader(h Header, frame []byte) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("devmodel: transmit header: %s: %w", fmt.Sprintf(format, a...), ErrFeatureViolation)
	}
	if h.Flags&(HdrDataValid|HdrRSCInfo) != 0 {
		return bad("flags %#x: DATA_VALID and RSC_INFO are receive-only", h.Flags)
	}
	if h.Flags&HdrNeedsCsum != 0 {
		if !n.negotiated(FeatureCsum) {
			return bad("NEEDS_CSUM without CSUM")
		}
		if int(h.CsumStart)+int(h.CsumOffset)+2 > len(frame) {
			return fmt.Errorf("devmodel: csum_start %d + csum_offset %d past a %d-byte frame: %w", h.CsumStart, h.CsumOffset, len(frame), ErrMalformed)
		}
	}
	gso := h.GSOType &^ GSOECN
	if gso == GSONone {
		if h.GSOType&GSOECN != 0 {
			return bad("ECN bit without a GSO type")
		}
		if max := n.maxFrame(); max > 0 && len(frame) > max {
			return bad("%d-byte frame over the MTU %d", len(frame), n.cfg.MTU)
		}
		return nil
	}
	var need uint64
	switch gso {
	case GSOTCPv4:
		need = FeatureHostTSO4
	case GSOTCPv6:
		need = FeatureHostTSO6
	case GSOUDP:
		need = FeatureHostUFO
	default:
		return bad("gso_type %d", h.GSOType)
	}
	if !n.negotiated(need) {
		return bad("gso_type %d without feature %#x", h.GSOType, need)
	}
	if h.GSOSize == 0 {
		return fmt.Errorf("devmodel: GSO packet with gso_size 0: %w", ErrMalformed)
	}
	if h.GSOType&GSOECN != 0 && !n.negotiated(FeatureHostECN) {
		return bad("ECN bit without HOST_ECN")
	}
	if gso == GSOTCPv4 || gso == GSOTCPv6 {
		l, err := parseTCP(frame)
		if err != nil {
			return err
		}
		if frame[l.l4+13]&tcpFlagCWR != 0 && h.GSOType&GSOECN == 0 {
			return bad("TCP segment with CWR set and no ECN bit in gso_type")
		}
	}
	return nil
}

// resolve hands f to emit as a receiver with features feats can take it:
// GSO packets whole when it negotiated the matching GUEST_TSO (and
// GUEST_ECN for the ECN bit), otherwise cut into segments with full
// checksums; partial checksums passed on with GUEST_CSUM, otherwise
// completed. emit does not own the frame's data past its return.
func (n *Net) resolve(f Frame, feats uint64, emit func(Frame)) error {
	valid := uint8(0)
	if feats&FeatureGuestCsum != 0 {
		valid = HdrDataValid
	}
	h := f.Hdr
	h.NumBuffers = 0
	gso := h.GSOType &^ GSOECN
	if gso != GSONone {
		var want uint64
		switch gso {
		case GSOTCPv4:
			want = FeatureGuestTSO4
		case GSOTCPv6:
			want = FeatureGuestTSO6
		case GSOUDP:
			want = FeatureGuestUFO
		}
		if h.GSOType&GSOECN != 0 {
			want |= FeatureGuestECN
		}
		if want != 0 && feats&want == want && feats&FeatureGuestCsum != 0 {
			emit(Frame{Hdr: h, Data: f.Data})
			return nil
		}
		if gso != GSOTCPv4 && gso != GSOTCPv6 {
			return fmt.Errorf("devmodel: gso_type %d for a receiver without it: %w", h.GSOType, ErrUnsupported)
		}
		var err error
		n.stats.Segmented++
		n.segBuf, err = segmentTCP(f.Data, int(h.GSOSize), n.segBuf, func(seg []byte) {
			emit(Frame{Hdr: Header{Flags: valid}, Data: seg})
		})
		return err
	}
	if h.Flags&HdrNeedsCsum != 0 {
		if feats&FeatureGuestCsum != 0 {
			emit(Frame{Hdr: Header{Flags: HdrNeedsCsum, CsumStart: h.CsumStart, CsumOffset: h.CsumOffset}, Data: f.Data})
			return nil
		}
		n.segBuf = append(n.segBuf[:0], f.Data...)
		if err := completeChecksum(n.segBuf, int(h.CsumStart), int(h.CsumOffset)); err != nil {
			return err
		}
		n.stats.Checksummed++
		emit(Frame{Data: n.segBuf})
		return nil
	}
	emit(Frame{Hdr: Header{Flags: h.Flags & valid}, Data: f.Data})
	return nil
}

// maxFrame is the largest non-GSO frame allowed in either direction with
// MTU negotiated (virtio 1.2 §5.1.6.2.1, §5.1.6.3.1): the MTU plus an
// Ethernet header and one VLAN tag; 0 when MTU is not negotiated.
func (n *Net) maxFrame() int {
	if !n.negotiated(FeatureMTU) || n.cfg.MTU == 0 {
		return 0
	}
	return int(n.cfg.MTU) + etherHdrLen + vlanTagLen
}
