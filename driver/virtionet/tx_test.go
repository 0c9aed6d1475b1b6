package virtionet

import (
	"bytes"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// txHarness is a txRing on a real split queue; the test plays the device
// through ringDevice.
type txHarness struct {
	t   testing.TB         // the running test
	q   *ringDevice        // the TX queue and its device side
	mem *virtqueue.HeapDMA // memory the device reads through
	tx  *txRing            // the ring under test
	c   *counters          // its counters
}

func newTxHarness(t testing.TB, size int, features uint64) *txHarness {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	h := &txHarness{t: t, q: newRingDevice(t, mem, size), mem: mem, c: &counters{}}
	var err error
	if h.tx, err = newTxRing(h.q, h.mem, features, h.c); err != nil {
		t.Fatal(err)
	}
	return h
}

// tcpPacket builds an Ethernet/IPv4/TCP packet with payload, as netstack
// hands it to WritePackets; released is set when its last reference goes.
func tcpPacket(payload []byte, gso stack.GSO, released *bool) *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: 14 + 20 + 20,
		Payload:            buffer.MakeWithData(payload),
		OnRelease:          func() { *released = true },
	})
	tcp := header.TCP(pkt.TransportHeader().Push(header.TCPMinimumSize))
	tcp.Encode(&header.TCPFields{SrcPort: 1, DstPort: 2, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck | header.TCPFlagCwr})
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(20 + 20 + len(payload)), Protocol: 6, TTL: 64})
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{Type: header.IPv4ProtocolNumber})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	pkt.GSOOptions = gso
	return pkt
}

// read returns the header and the frame of the chain at head, as the
// device reads them.
func (h *txHarness) read(chain []virtqueue.Buffer) (Header, []byte) {
	var all []byte
	for _, b := range chain {
		if b.Writable {
			h.t.Fatal("TX chain has a writable buffer")
		}
		s, err := h.mem.Slice(b.Addr, int(b.Len))
		if err != nil {
			h.t.Fatal(err)
		}
		all = append(all, s...)
	}
	hl := h.tx.hdrLen
	hdr, err := DecodeHeader(all, hl)
	if err != nil {
		h.t.Fatal(err)
	}
	return hdr, all[hl:]
}

func TestTxPostsHeaderAndPacketWithoutCopy(t *testing.T) {
	tso := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1448, L3HdrLen: 20}
	for _, tt := range []struct {
		name     string
		features uint64
		payload  int
		gso      stack.GSO
		want     Header
	}{
		{"modern small packet", virtio.FeatureVersion1, 100, stack.GSO{}, Header{}},
		{"legacy small packet, 10-byte header", 0, 100, stack.GSO{}, Header{}},
		{"TSO packet", virtio.FeatureVersion1 | FeatureCsum | FeatureHostTSO4, 60000, tso,
			Header{Flags: HdrFlagNeedsCsum, GSOType: GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}},
		{"TSO packet with CWR and HOST_ECN", virtio.FeatureVersion1 | FeatureCsum | FeatureHostTSO4 | FeatureHostECN, 60000, tso,
			Header{Flags: HdrFlagNeedsCsum, GSOType: GSOTCPv4 | GSOECN, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}},
		{"checksum offload of a small segment", virtio.FeatureVersion1 | FeatureCsum | FeatureHostTSO4, 1000, tso,
			Header{Flags: HdrFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newTxHarness(t, 256, tt.features)
			released := false
			payload := frameOf(tt.payload, 5)
			pkt := tcpPacket(payload, tt.gso, &released)
			want := append([]byte(nil), pktBytes(pkt)...)
			var list stack.PacketBufferList
			list.PushBack(pkt)
			n, err := h.tx.Write(list.AsSlice())
			if n != 1 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			list.Reset() // the caller's reference goes, as netstack does
			if released {
				t.Fatal("packet released while the device owns it")
			}
			head, chain, ok := h.q.takeAvail()
			if !ok {
				t.Fatal("nothing posted")
			}
			hdr, frame := h.read(chain)
			if hdr != tt.want {
				t.Fatalf("header %+v, want %+v", hdr, tt.want)
			}
			if !bytes.Equal(frame, want) {
				t.Fatalf("frame differs (%d vs %d bytes)", len(frame), len(want))
			}
			h.q.pushUsed(uint32(head), 0)
			if h.tx.ReleaseSent() != 1 || !released {
				t.Fatal("completed packet not released")
			}
			s := h.c.snapshot()
			if s.TxPackets != 1 || s.TxCompleted != 1 || s.TxBytes != uint64(len(want)) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestTxFullRingIsBackpressure(t *testing.T) {
	// Each packet takes 3 descriptors on a legacy device without
	// ANY_LAYOUT: virtio header, the headers' view, the payload's view.
	h := newTxHarness(t, 8, 0) // room for 2 packets, 2 descriptors spare
	h.tx.fullWait = 0          // no device goroutine here: do not wait for one
	var rel [5]bool
	var pkts []*stack.PacketBuffer
	for i := range rel {
		pkts = append(pkts, tcpPacket(frameOf(100, byte(i)), stack.GSO{}, &rel[i]))
	}
	n, err := h.tx.Write(pkts)
	if n != 2 || err != nil {
		t.Fatalf("Write of 5 into a ring for 2 = %d, %v; want 2, nil", n, err)
	}
	n, err = h.tx.Write(pkts[2:])
	if _, ok := err.(*tcpip.ErrWouldBlock); n != 0 || !ok {
		t.Fatalf("Write into a full ring = %d, %v; want 0, ErrWouldBlock", n, err)
	}
	if h.c.snapshot().TxRingFull == 0 {
		t.Fatal("full ring not counted")
	}
	// The device completes one; the next Write reclaims it inline.
	head, _, _ := h.q.takeAvail()
	h.q.pushUsed(uint32(head), 0)
	if n, err := h.tx.Write(pkts[2:]); n != 1 || err != nil {
		t.Fatalf("Write after a completion = %d, %v; want 1", n, err)
	}
	for _, p := range pkts {
		p.DecRef()
	}
	for i := range 2 {
		if rel[i+1] {
			t.Fatalf("packet %d released while in flight", i+1)
		}
	}
	h.tx.Detach()
	for i := range 3 {
		if !rel[i] {
			t.Fatalf("packet %d not released by Detach", i)
		}
	}
	if rel[3] != true || rel[4] != true {
		t.Fatal("packets never posted must be released by their owner only")
	}
}

func TestTxCompletionErrors(t *testing.T) {
	h := newTxHarness(t, 16, virtio.FeatureVersion1)
	rel := false
	p := tcpPacket(frameOf(100, 1), stack.GSO{}, &rel)
	h.tx.Write([]*stack.PacketBuffer{p})
	p.DecRef()
	head, _, _ := h.q.takeAvail()
	h.q.pushUsed(999, 0)           // bad id: counted, nothing freed
	h.q.pushUsed(uint32(head), 64) // len on a read-only chain: counted, released
	h.q.pushUsed(uint32(head), 0)  // duplicate: counted
	h.tx.ReleaseSent()
	s := h.c.snapshot()
	if s.TxDeviceErrors != 2 || s.TxBadLength != 1 || !rel || s.TxCompleted != 1 {
		t.Fatalf("stats %+v released %v", s, rel)
	}
}

func TestTxSplitsViewsAtPageBoundaries(t *testing.T) {
	h := newTxHarness(t, 256, virtio.FeatureVersion1|virtio.FeatureIndirectDesc)
	rel := false
	payload := frameOf(50000, 2)
	p := tcpPacket(payload, stack.GSO{}, &rel)
	want := append([]byte(nil), pktBytes(p)...)
	h.tx.Write([]*stack.PacketBuffer{p})
	p.DecRef()
	_, chain, _ := h.q.takeAvail()
	for _, b := range chain[1:] {
		if b.Addr%pageSize+uint64(b.Len) > pageSize {
			t.Fatalf("descriptor %#x+%d crosses a page", b.Addr, b.Len)
		}
	}
	if _, frame := h.read(chain); !bytes.Equal(frame, want) {
		t.Fatal("frame differs")
	}
}

func TestTxWriterWaitsForCompletionsWhenFull(t *testing.T) {
	h := newTxHarness(t, 4, 0) // one packet (3 descriptors) at a time
	h.tx.fullWait = 10 * time.Second
	var rel [2]bool
	p0 := tcpPacket(frameOf(100, 0), stack.GSO{}, &rel[0])
	p1 := tcpPacket(frameOf(100, 1), stack.GSO{}, &rel[1])
	defer p0.DecRef()
	defer p1.DecRef()
	// The device side: complete the first chain a little later, as the
	// TX loop would after an interrupt.
	go func() {
		time.Sleep(20 * time.Millisecond)
		h.tx.mu.Lock()
		head, _, _ := h.q.takeAvail()
		h.q.pushUsed(uint32(head), 0)
		h.tx.reclaimLocked()
		h.tx.mu.Unlock()
	}()
	n, err := h.tx.Write([]*stack.PacketBuffer{p0, p1})
	if n != 2 || err != nil {
		t.Fatalf("Write = %d, %v; want both packets posted after the wait", n, err)
	}
}

func TestTxInterruptsAreOnOnlyWhileAWriterWaitsForRoom(t *testing.T) {
	h := newTxHarness(t, 4, 0) // one packet (3 descriptors) at a time
	h.tx.fullWait = 10 * time.Second
	intrOn := func() bool {
		h.tx.mu.Lock()
		defer h.tx.mu.Unlock()
		return h.q.intrOn
	}
	var rel [2]bool
	p0 := tcpPacket(frameOf(100, 0), stack.GSO{}, &rel[0])
	p1 := tcpPacket(frameOf(100, 1), stack.GSO{}, &rel[1])
	defer p0.DecRef()
	defer p1.DecRef()
	if n, err := h.tx.Write([]*stack.PacketBuffer{p0}); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if intrOn() {
		t.Fatal("TX interrupts on after a write that found room")
	}
	done := make(chan int)
	go func() {
		n, _ := h.tx.Write([]*stack.PacketBuffer{p1})
		done <- n
	}()
	eventually(t, "TX interrupts on while the writer waits", intrOn)
	// The device completes the first chain and interrupts; the TX loop
	// reclaims.
	h.tx.mu.Lock()
	head, _, _ := h.q.takeAvail()
	h.q.pushUsed(uint32(head), 0)
	h.tx.mu.Unlock()
	h.tx.ReleaseSent()
	if n := <-done; n != 1 {
		t.Fatalf("waiting Write posted %d packets, want 1", n)
	}
	if intrOn() {
		t.Error("TX interrupts still on after the last waiter left")
	}
	if c := h.c.snapshot().TxCompleted; c != 1 {
		t.Errorf("%d chains completed, want 1", c)
	}
}

func TestTxCompletionWakesEveryWaitingWriter(t *testing.T) {
	h := newTxHarness(t, 4, 0) // one packet (3 descriptors) at a time
	h.tx.fullWait = 20 * time.Second
	var rel [3]bool
	var pkts [3]*stack.PacketBuffer
	for i := range pkts {
		pkts[i] = tcpPacket(frameOf(100, byte(i)), stack.GSO{}, &rel[i])
		defer pkts[i].DecRef()
	}
	if n, _ := h.tx.Write(pkts[:1]); n != 1 {
		t.Fatal("first write did not post")
	}
	done := make(chan struct{}, 2)
	for _, p := range pkts[1:] {
		go func() {
			h.tx.Write([]*stack.PacketBuffer{p})
			done <- struct{}{}
		}()
	}
	eventually(t, "two writers waiting", func() bool {
		h.tx.mu.Lock()
		defer h.tx.mu.Unlock()
		return h.tx.waiters == 2
	})
	// Complete each chain as it is posted, as a device would; each
	// completion must wake the writers still waiting, not just one of them
	// (the other would sit out its 20 s wait).
	deadline := time.Now().Add(10 * time.Second)
	for finished := 0; finished < 2; {
		select {
		case <-done:
			finished++
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 waiting writers finished", finished)
		}
		h.tx.mu.Lock()
		if head, _, ok := h.q.takeAvail(); ok {
			h.q.pushUsed(uint32(head), 0)
		}
		h.tx.mu.Unlock()
		h.tx.ReleaseSent()
		time.Sleep(time.Millisecond)
	}
}

// A packet whose views make a chain longer than the queue takes (netstack
// links one view per application write into a TSO segment) goes out
// copied into a bounce buffer: the virtio header and the whole frame.
func TestTxPacketLongerThanTheRingGoesOutThroughABounceBuffer(t *testing.T) {
	h := newTxHarness(t, 2, 0) // a packet needs 3 descriptors, a bounced one 2
	rel := false
	p := tcpPacket(frameOf(100, 1), stack.GSO{}, &rel)
	want := append([]byte(nil), pktBytes(p)...)
	if n, err := h.tx.Write([]*stack.PacketBuffer{p}); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v; want the packet consumed", n, err)
	}
	p.DecRef()
	if s := h.c.snapshot(); s.TxBounced != 1 || s.TxPackets != 1 || s.TxDropTooManySegs != 0 {
		t.Fatalf("stats %+v", s)
	}
	head, chain, ok := h.q.takeAvail()
	if !ok || len(chain) != 2 {
		t.Fatalf("posted chain %v, want the header and the bounce buffer", chain)
	}
	if _, frame := h.read(chain); !bytes.Equal(frame, want) {
		t.Fatal("the device reads a different frame from the bounce buffer")
	}
	// The bounce buffer comes back with the completion.
	h.q.pushUsed(uint32(head), 0)
	h.tx.ReleaseSent()
	if len(h.tx.freeBnc) != bounceBuffers || !rel {
		t.Errorf("after completion: %d of %d bounce buffers free, packet released %v", len(h.tx.freeBnc), bounceBuffers, rel)
	}
}

func TestTxPacketLongerThanTheRingEvenBouncedIsDroppedAndCounted(t *testing.T) {
	h := newTxHarness(t, 1, 0) // not even the header and a bounce buffer fit
	rel := false
	p := tcpPacket(frameOf(100, 1), stack.GSO{}, &rel)
	n, err := h.tx.Write([]*stack.PacketBuffer{p})
	if n != 1 || err != nil {
		t.Fatalf("Write = %d, %v; want the packet consumed", n, err)
	}
	p.DecRef()
	if s := h.c.snapshot(); s.TxDropTooManySegs != 1 || s.TxPackets != 0 || !rel {
		t.Fatalf("stats %+v, released %v", s, rel)
	}
}

func TestTxCopiesOnlyProtocolHeaders(t *testing.T) {
	for _, tt := range []struct {
		name      string
		features  uint64
		wantDescs int
	}{
		{"VERSION_1: headers beside the virtio header", virtio.FeatureVersion1, 2},
		{"legacy ANY_LAYOUT: headers beside the virtio header", virtio.FeatureAnyLayout, 2},
		{"legacy without ANY_LAYOUT: virtio header alone", 0, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newTxHarness(t, 16, tt.features)
			rel := false
			p := tcpPacket(frameOf(1000, 3), stack.GSO{}, &rel)
			defer p.DecRef()
			want := append([]byte(nil), pktBytes(p)...)
			h.tx.Write([]*stack.PacketBuffer{p})
			_, chain, _ := h.q.takeAvail()
			if len(chain) != tt.wantDescs {
				t.Fatalf("%d descriptors, want %d", len(chain), tt.wantDescs)
			}
			if _, frame := h.read(chain); !bytes.Equal(frame, want) {
				t.Fatal("frame differs")
			}
			// The last descriptor is the payload in place, not a copy.
			views := p.AsSlices()
			last := views[len(views)-1]
			phys, err := h.mem.Phys(last[:1])
			if err != nil || chain[len(chain)-1].Addr != phys {
				t.Fatalf("payload descriptor at %#x, payload at %#x (%v): copied", chain[len(chain)-1].Addr, phys, err)
			}
		})
	}
}
