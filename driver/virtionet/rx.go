package virtionet

import (
	"errors"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// rxCopyLen is how many bytes of a received frame are copied into the
	// packet's linear head, so that the Ethernet, IP and TCP headers are
	// contiguous in a small buffer; the rest stays in the pages.
	rxCopyLen = 128
	// maxFrameLen bounds a received frame: an IP packet of 65535 bytes
	// with an Ethernet and a VLAN header.
	maxFrameLen = 65535 + header.EthernetMinimumSize + 4
	// bigPacketLen is the payload room of a non-mergeable buffer when
	// GUEST_TSO is negotiated (virtio 1.2 §5.1.6.3.1: 65562 bytes with a
	// 12-byte header).
	bigPacketLen = 65550
	// smallExtra is the room beyond the MTU of a non-mergeable buffer
	// without GUEST_TSO: Ethernet and VLAN headers.
	smallExtra = header.EthernetMinimumSize + 4
)

// rxSeg is one used buffer (page) of a packet being reassembled.
type rxSeg struct {
	page *buffer.View // the page; owned by the driver until handed up
	n    int          // bytes the device wrote into it
}

// rxRing is the receive side: it keeps the RX virtqueue full of pages and
// turns used buffers into packets. It is owned by one goroutine (the RX
// loop, or a test); nothing in it is safe for concurrent use except the
// counters.
type rxRing struct {
	q         virtqueue.Queue    // the RX virtqueue
	dma       virtqueue.DMA      // translates page addresses
	hdrLen    int                // virtio header size (10 or 12)
	mergeable bool               // MRG_RXBUF: one page per buffer, packets span num_buffers
	gso       bool               // GUEST_TSO4/6 negotiated: coalesced packets may arrive
	guestCsum bool               // GUEST_CSUM negotiated: checksum flags are meaningful
	bufLens   []int              // length posted in each page of one buffer
	bufDescs  int                // descriptors one buffer takes in the ring
	posted    [][]*buffer.View   // per head id: the pages of the chain posted there, nil when none
	spare     []*buffer.View     // pages the driver owns and has not posted
	chain     []virtqueue.Buffer // scratch chain for Add
	segs      []rxSeg            // scratch for reassembly
	// skip counts used buffers still to come of a packet already dropped
	// part-way (num_buffers known, a later buffer missing or bad): they
	// are discarded as they arrive, across polls, never parsed as packets
	// (their first bytes are payload, not a virtio header).
	skip    int
	deliver func(pkt *stack.PacketBuffer) bool // hands a packet up; false when nobody takes it; set by Open
	notify  func()                             // notifies the device of new buffers; set by Open
	faulted func()                             // told of a ring violation that loses buffers; set by Open (Device.requestReset)
	c       *counters                          // shared counters
}

// newRxRing prepares the RX side for q. mtu sizes non-mergeable buffers.
func newRxRing(q virtqueue.Queue, dma virtqueue.DMA, features uint64, mtu int, c *counters) *rxRing {
	indirect := features&virtio.FeatureIndirectDesc != 0
	r := &rxRing{
		q:         q,
		dma:       dma,
		hdrLen:    headerLen(features),
		mergeable: features&FeatureMrgRxbuf != 0,
		gso:       features&(FeatureGuestTSO4|FeatureGuestTSO6) != 0,
		guestCsum: features&FeatureGuestCsum != 0,
		posted:    make([][]*buffer.View, q.Size()),
		c:         c,
		deliver:   func(*stack.PacketBuffer) bool { return false },
		notify:    func() {},
		faulted:   func() {},
	}
	total := pageSize
	if !r.mergeable {
		if r.gso {
			total = r.hdrLen + bigPacketLen
		} else {
			total = r.hdrLen + smallExtra + mtu
		}
	}
	for total > 0 {
		n := min(total, pageSize)
		r.bufLens = append(r.bufLens, n)
		total -= n
	}
	for i := range r.posted {
		r.posted[i] = make([]*buffer.View, 0, len(r.bufLens))
	}
	// With INDIRECT_DESC a chain takes one ring descriptor (if it fits
	// the queue's indirect tables; if not, Add returns ErrFull early,
	// which is only a missed refill, never a loss).
	r.bufDescs = len(r.bufLens)
	if indirect && r.bufDescs > 1 && r.bufDescs <= virtqueue.DefaultIndirectMax(q.Size()) {
		r.bufDescs = 1
	}
	r.chain = make([]virtqueue.Buffer, 0, len(r.bufLens))
	r.segs = make([]rxSeg, 0, len(r.bufLens))
	c.rxRingSize.Store(uint64(q.Size()))
	return r
}

// getPage returns a page the driver owns: a spare one, or a fresh chunk
// from gVisor's pool.
func (r *rxRing) getPage() *buffer.View {
	if n := len(r.spare); n > 0 {
		v := r.spare[n-1]
		r.spare[n-1] = nil
		r.spare = r.spare[:n-1]
		return v
	}
	r.c.rxPagesAllocated.Add(1)
	return buffer.NewView(pageSize)
}

// putPage keeps a page the device returned and nothing was handed up from.
func (r *rxRing) putPage(v *buffer.View) {
	v.Reset()
	r.spare = append(r.spare, v)
	r.c.rxPagesRecycled.Add(1)
}

// Service is what the RX loop does on each wakeup: with interrupts
// suppressed, deliver what the device returned and refill, re-enable
// interrupts, and go round again if entries arrived meanwhile (the race
// every NAPI-style loop must close). It stops early once stop reports
// true (the device has failed).
func (r *rxRing) Service(budget int, stop func() bool) {
	for !stop() {
		r.q.DisableInterrupts()
		for r.Poll(budget) > 0 {
			r.Refill()
		}
		r.Refill()
		if !r.q.EnableInterrupts() {
			return
		}
	}
}

// Refill posts buffers until the ring is full and publishes them. It
// reports whether the ring ended with buffers in flight.
func (r *rxRing) Refill() bool {
	added := false
	// Checking the free count first avoids translating a buffer's pages
	// only to have Add refuse the chain.
	for r.q.Free() >= r.bufDescs {
		r.chain = r.chain[:0]
		ok := true
		for i, want := range r.bufLens {
			v := r.getPage()
			mem := chunkBytes(v)
			if pageRemain(mem) != pageSize || len(mem) < want {
				// A 4096-byte chunk is a page-aligned Go heap object
				// (TestRxPagesArePageAligned); one that is not would
				// cross a physical page boundary. Give it back.
				r.c.rxRefillErrors.Add(1)
				v.Release()
				ok = false
				break
			}
			phys, err := r.dma.Phys(mem[:want])
			if err != nil {
				r.c.rxRefillErrors.Add(1)
				r.spare = append(r.spare, v)
				ok = false
				break
			}
			r.chain = append(r.chain, virtqueue.Buffer{Addr: phys, Len: uint32(want), Writable: true})
			r.segs = append(r.segs[:i], rxSeg{page: v})
		}
		if !ok {
			r.releaseSegs(len(r.chain))
			break
		}
		head, err := r.q.Add(r.chain)
		if err != nil {
			// ErrFull (or a chain the queue cannot take): keep the
			// pages for later.
			r.releaseSegs(len(r.chain))
			if !errors.Is(err, virtqueue.ErrFull) {
				r.c.rxRefillErrors.Add(1)
			}
			break
		}
		pages := r.posted[head][:0]
		for _, s := range r.segs[:len(r.chain)] {
			pages = append(pages, s.page)
		}
		r.posted[head] = pages
		r.segs = r.segs[:0]
		added = true
	}
	r.segs = r.segs[:0]
	if added {
		if r.q.Kick() {
			r.c.rxNotifies.Add(1)
			r.notify()
		} else {
			r.c.rxKicksSuppressed.Add(1)
		}
	}
	r.c.rxRingInFlight.Store(uint64(r.q.InFlight()))
	return r.q.InFlight() > 0
}

// releaseSegs puts the first n pages of r.segs back to the spare list
// without counting them as recycled (they were never posted).
func (r *rxRing) releaseSegs(n int) {
	for _, s := range r.segs[:n] {
		s.page.Reset()
		r.spare = append(r.spare, s.page)
	}
	r.segs = r.segs[:0]
}

// take removes the pages posted at head from the ring's bookkeeping. The
// caller owns them afterwards.
func (r *rxRing) take(head uint16) []*buffer.View {
	pages := r.posted[head]
	r.posted[head] = pages[:0]
	return pages
}

// recycleHead returns the pages of a used buffer whose data is dropped.
func (r *rxRing) recycleHead(head uint16) {
	for _, v := range r.take(head) {
		r.putPage(v)
	}
}

// recycleSegs returns the pages of a packet being dropped.
func (r *rxRing) recycleSegs() {
	for _, s := range r.segs {
		r.putPage(s.page)
	}
	r.segs = r.segs[:0]
}

// Poll receives up to budget packets from the used ring and reports how many
// used entries it consumed. The caller refills afterwards.
func (r *rxRing) Poll(budget int) int {
	used := 0
	for i := 0; i < budget; i++ {
		head, n, ok, err := r.q.Pop()
		if !ok && err == nil {
			break
		}
		used++
		if err != nil {
			r.popError(head, err)
			if r.skip > 0 {
				r.skip-- // it took one of the dropped packet's places
			}
			continue
		}
		r.c.rxBuffersUsed.Add(1)
		if r.skip > 0 {
			r.skip--
			r.c.rxRestSkipped.Add(1)
			r.recycleHead(head)
			continue
		}
		if r.mergeable {
			used += r.receiveMergeable(head, int(n))
		} else {
			r.receiveChain(head, int(n))
		}
	}
	r.c.rxRingInFlight.Store(uint64(r.q.InFlight()))
	return used
}

// popError counts a used-ring violation and recycles the buffer when the
// queue says its head is valid.
func (r *rxRing) popError(head uint16, err error) {
	if errors.Is(err, virtqueue.ErrBadLength) {
		r.c.rxDropBadLength.Add(1)
		r.recycleHead(head)
		return
	}
	// The buffers behind the entry stay posted, out of reach until a
	// device reset: ask for one.
	r.c.rxDropDeviceError.Add(1)
	r.faulted()
}

// receiveMergeable handles a packet whose first buffer is head, n bytes
// long, popping the other num_buffers-1 buffers. It returns how many extra
// used entries it consumed.
func (r *rxRing) receiveMergeable(head uint16, n int) int {
	pages := r.take(head)
	if len(pages) == 0 {
		r.c.rxDropDeviceError.Add(1)
		return 0
	}
	r.segs = append(r.segs[:0], rxSeg{page: pages[0], n: n})
	if n < r.hdrLen {
		r.c.rxDropShort.Add(1)
		r.recycleSegs()
		return 0
	}
	hdr, _ := DecodeHeader(chunkBytes(pages[0]), r.hdrLen)
	nb := int(hdr.NumBuffers)
	if nb == 0 || nb-1 > r.q.InFlight() {
		r.c.rxDropNumBuffers.Add(1)
		r.recycleSegs()
		return 0
	}
	extra := 0
	total := n
	for len(r.segs) < nb {
		h, m, ok, err := r.q.Pop()
		if !ok && err == nil {
			// The device must publish every buffer of a packet
			// together (virtio 1.2 §5.1.6.4.2); the rest, if it
			// comes, is discarded.
			r.c.rxDropTruncated.Add(1)
			r.skip = nb - len(r.segs)
			r.recycleSegs()
			return extra
		}
		extra++
		if err != nil {
			// The bad entry was one of the packet's buffers.
			r.popError(h, err)
			r.skip = nb - len(r.segs) - 1
			r.recycleSegs()
			return extra
		}
		r.c.rxBuffersUsed.Add(1)
		pages := r.take(h)
		if len(pages) == 0 {
			// The queue vouched for h, so this is a driver bug; drop
			// rather than crash.
			r.c.rxDropDeviceError.Add(1)
			r.skip = nb - len(r.segs) - 1
			r.recycleSegs()
			return extra
		}
		r.segs = append(r.segs, rxSeg{page: pages[0], n: int(m)})
		total += int(m)
	}
	r.build(&hdr, total)
	return extra
}

// ipv4HeaderOK reports whether frame, an Ethernet frame's first bytes,
// carries an IPv4 header with a correct checksum, or is not IPv4 (other
// protocols have no header checksum). An IPv4 header that does not fit in
// frame, or one behind a VLAN tag, is not vouched for: netstack checks it.
func ipv4HeaderOK(frame []byte) bool {
	const eth = header.EthernetMinimumSize
	if len(frame) < eth {
		return false
	}
	switch header.Ethernet(frame).Type() {
	case header.IPv4ProtocolNumber:
	case header.IPv6ProtocolNumber, header.ARPProtocolNumber:
		return true
	default:
		return false
	}
	ip := header.IPv4(frame[eth:])
	if len(ip) < header.IPv4MinimumSize || int(ip.HeaderLength()) < header.IPv4MinimumSize || int(ip.HeaderLength()) > len(ip) {
		return false
	}
	return ip[:ip.HeaderLength()].IsChecksumValid()
}

// receiveChain handles a non-mergeable buffer: one chain of pages holding
// the header and the whole packet.
func (r *rxRing) receiveChain(head uint16, n int) {
	pages := r.take(head)
	if len(pages) == 0 {
		r.c.rxDropDeviceError.Add(1)
		return
	}
	r.segs = r.segs[:0]
	rem := n
	for i, v := range pages {
		m := min(rem, r.bufLens[i])
		r.segs = append(r.segs, rxSeg{page: v, n: m})
		rem -= m
	}
	if rem > 0 || n < r.hdrLen {
		// rem > 0 cannot happen after the queue's length check (every
		// page is posted with its bufLens length); counted all the same.
		r.c.rxDropShort.Add(1)
		r.recycleSegs()
		return
	}
	hdr, _ := DecodeHeader(chunkBytes(pages[0]), r.hdrLen)
	r.build(&hdr, n)
}

// build turns r.segs (total bytes including the virtio header at the start
// of the first page) into a packet and hands it up. Every page either goes
// up with the packet or back to the spare list.
func (r *rxRing) build(hdr *Header, total int) {
	frameLen := total - r.hdrLen
	switch {
	case frameLen < header.EthernetMinimumSize:
		r.c.rxDropRunt.Add(1)
		r.recycleSegs()
		return
	case frameLen > maxFrameLen:
		r.c.rxDropTooLong.Add(1)
		r.recycleSegs()
		return
	}
	gsoType := hdr.GSOType &^ GSOECN
	if gsoType != GSONone && (!r.gso || (gsoType != GSOTCPv4 && gsoType != GSOTCPv6)) {
		// A coalesced packet we did not ask for (or UDP GSO, never
		// negotiated) cannot be handled correctly.
		r.c.rxDropBadHeaderType.Add(1)
		r.recycleSegs()
		return
	}
	if hdr.Flags&HdrFlagNeedsCsum != 0 && int(hdr.CsumStart)+int(hdr.CsumOffset)+2 > frameLen {
		// The checksum field it names lies outside the frame (Linux
		// refuses such a header too): the packet cannot be what the
		// header says.
		r.c.rxDropBadCsum.Add(1)
		r.recycleSegs()
		return
	}

	// Copy the first bytes into the linear head.
	headLen := min(rxCopyLen, frameLen)
	head := buffer.NewView(headLen)
	need := headLen
	// Position in the segments: segment i, offset off.
	i, off := 0, r.hdrLen
	for need > 0 {
		s := r.segs[i]
		avail := s.n - off
		if avail <= 0 {
			i, off = i+1, 0
			continue
		}
		c := min(avail, need)
		head.Write(chunkBytes(s.page)[off : off+c])
		need -= c
		off += c
	}
	buf := buffer.MakeWithView(head)
	// The rest of each page goes up without copying.
	for j, s := range r.segs {
		start := 0
		switch {
		case j < i:
			start = s.n
		case j == i:
			start = off
		}
		if start >= s.n {
			r.putPage(s.page)
			continue
		}
		v := s.page
		v.Reset()
		v.Grow(s.n)
		v.TrimFront(start)
		frag := buffer.MakeWithView(v)
		buf.Merge(&frag) // Merge links the view; Append would copy into the previous page
		r.c.rxPagesUp.Add(1)
	}
	r.segs = r.segs[:0]

	// DATA_VALID and NEEDS_CSUM vouch for the transport checksum only,
	// but netstack skips every check of a packet marked validated: the
	// IPv4 header checksum is verified here (it is in the linear head).
	validated := rxChecksumValidated(hdr, r.guestCsum) && ipv4HeaderOK(head.AsSlice())
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buf})
	if validated {
		pkt.RXChecksumValidated = true
		r.c.rxChecksumValidated.Add(1)
	}
	if gsoType != GSONone {
		r.c.rxGSOPackets.Add(1)
	}
	if r.deliver(pkt) {
		r.c.rxPackets.Add(1)
		r.c.rxBytes.Add(uint64(frameLen))
	} else {
		r.c.rxDropNoDispatcher.Add(1)
	}
	pkt.DecRef()
}

// Detach takes back every posted page after a device reset and releases
// it, with the spare pages, to gVisor's pool.
func (r *rxRing) Detach() {
	r.skip = 0
	for {
		head, ok := r.q.DetachUnused()
		if !ok {
			break
		}
		for _, v := range r.take(head) {
			v.Release()
		}
	}
	for _, v := range r.spare {
		v.Release()
	}
	r.spare = nil
}
