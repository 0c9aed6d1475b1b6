package delayedack

import (
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link records what reaches the wire.
type link struct {
	mu   sync.Mutex
	sent []sent
}

// sent is a packet as the link saw it.
type sent struct {
	port  uint16 // source port: which connection
	ack   uint32
	flags header.TCPFlags
	data  int
}

func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pkts.AsSlice() {
		tcp := header.TCP(p.TransportHeader().Slice())
		l.sent = append(l.sent, sent{port: tcp.SourcePort(), ack: tcp.AckNumber(), flags: tcp.Flags(), data: p.Data().Size()})
	}
	return pkts.Len(), nil
}

func (l *link) wire() []sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sent(nil), l.sent...)
}

// segment builds an outgoing IPv4 TCP packet from port to port 80.
func segment(port uint16, flags header.TCPFlags, ack uint32, data int, opts []byte) *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.EthernetMinimumSize + header.IPv4MinimumSize + header.TCPMinimumSize + len(opts),
		Payload:            buffer.MakeWithData(make([]byte, data)),
	})
	hdrLen := header.TCPMinimumSize + len(opts)
	tcp := header.TCP(pkt.TransportHeader().Push(hdrLen))
	tcp.Encode(&header.TCPFields{SrcPort: port, DstPort: 80, AckNum: ack, DataOffset: uint8(hdrLen), Flags: flags, WindowSize: 1000})
	copy(tcp[header.TCPMinimumSize:], opts)
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + hdrLen + data), Protocol: uint8(header.TCPProtocolNumber), TTL: 64,
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2})})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	return pkt
}

// write hands pkt to d as the NIC does (keeping and then dropping its own
// reference).
func write(t *testing.T, d *Discipline, pkt *stack.PacketBuffer) {
	t.Helper()
	if err := d.WritePacket(pkt); err != nil {
		t.Fatalf("WritePacket: %v", err)
	}
	pkt.DecRef()
}

const ack = header.TCPFlagAck

func TestResponseCarriesTheHeldAck(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack, 100, 0, nil))
	if w := l.wire(); len(w) != 0 {
		t.Fatalf("pure ACK went out at once: %+v", w)
	}
	write(t, d, segment(1, ack|header.TCPFlagPsh, 100, 50, nil))
	if w := l.wire(); len(w) != 1 || w[0].data != 50 {
		t.Fatalf("wire %+v, want only the response", w)
	}
	if s := d.Stats(); s.Held != 1 || s.Superseded != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestAckWithNothingBehindItLeavesAfterTheDelay(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: 5 * time.Millisecond})
	defer d.Close()
	write(t, d, segment(1, ack, 100, 0, nil))
	deadline := time.Now().Add(5 * time.Second)
	for len(l.wire()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("held ACK never left")
		}
		time.Sleep(time.Millisecond)
	}
	if w := l.wire(); len(w) != 1 || w[0].ack != 100 || w[0].data != 0 {
		t.Fatalf("wire %+v", w)
	}
	if s := d.Stats(); s.Expired != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestDuplicateAckSendsTheHeldOneFirst(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack, 100, 0, nil))
	write(t, d, segment(1, ack, 100, 0, nil))
	if w := l.wire(); len(w) != 2 || w[0].ack != 100 || w[1].ack != 100 {
		t.Fatalf("wire %+v, want both duplicate ACKs", w)
	}
}

func TestNewerPureAckReplacesTheHeldOneAndLeavesAtOnce(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack, 100, 0, nil))
	write(t, d, segment(1, ack, 3000, 0, nil))
	if w := l.wire(); len(w) != 1 || w[0].ack != 3000 {
		t.Fatalf("wire %+v, want the newer ACK alone", w)
	}
}

func TestPacketsThatAreNotPureAcksAreNeverHeld(t *testing.T) {
	sack := []byte{header.TCPOptionNOP, header.TCPOptionNOP, header.TCPOptionSACK, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	for _, tc := range []struct {
		name string
		pkt  *stack.PacketBuffer
	}{
		{"data", segment(1, ack, 100, 10, nil)},
		{"SYN-ACK", segment(1, ack|header.TCPFlagSyn, 100, 0, nil)},
		{"FIN", segment(1, ack|header.TCPFlagFin, 100, 0, nil)},
		{"RST", segment(1, header.TCPFlagRst, 0, 0, nil)},
		{"ACK with SACK blocks", segment(1, ack, 100, 0, sack)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &link{}
			d := New(l, Options{Delay: time.Hour})
			defer d.Close()
			write(t, d, tc.pkt)
			if w := l.wire(); len(w) != 1 {
				t.Fatalf("wire %+v, want the packet at once", w)
			}
		})
	}
}

func TestConnectionsAreIndependent(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack, 100, 0, nil))
	write(t, d, segment(2, ack, 100, 20, nil))
	if w := l.wire(); len(w) != 1 || w[0].port != 2 {
		t.Fatalf("wire %+v, want only connection 2's data", w)
	}
	write(t, d, segment(1, ack, 100, 30, nil))
	if w := l.wire(); len(w) != 2 || w[1].port != 1 || w[1].data != 30 {
		t.Fatalf("wire %+v", w)
	}
}

func TestPacketAcknowledgingLessGoesAfterTheHeldAck(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack, 200, 0, nil))
	write(t, d, segment(1, header.TCPFlagRst, 0, 0, nil))
	if w := l.wire(); len(w) != 2 || w[0].ack != 200 || w[1].flags&header.TCPFlagRst == 0 {
		t.Fatalf("wire %+v, want the held ACK then the RST", w)
	}
	if s := d.Stats(); s.Flushed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestCloseSendsWhatIsHeld(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	write(t, d, segment(1, ack, 100, 0, nil))
	write(t, d, segment(2, ack, 100, 0, nil))
	d.Close()
	if w := l.wire(); len(w) != 2 {
		t.Fatalf("wire %+v, want both held ACKs", w)
	}
	write(t, d, segment(3, ack, 100, 0, nil))
	if w := l.wire(); len(w) != 3 {
		t.Fatalf("after Close a pure ACK was held: %+v", w)
	}
}

func TestAckOfTwoFullSegmentsOrMoreLeavesAtOnce(t *testing.T) {
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack|header.TCPFlagPsh, 1000, 100, nil)) // the last acknowledgement sent: 1000
	write(t, d, segment(1, ack, 1000+bulkAck-1, 0, nil))           // less than two segments: held
	if w := l.wire(); len(w) != 1 {
		t.Fatalf("wire %+v, want the small advance held", w)
	}
	write(t, d, segment(1, ack, 1000+bulkAck+5000, 0, nil)) // a bulk receiver's ACK
	if w := l.wire(); len(w) != 2 || w[1].ack != 1000+bulkAck+5000 {
		t.Fatalf("wire %+v, want the bulk ACK at once", w)
	}
	write(t, d, segment(1, ack, 1000+2*bulkAck+6000, 0, nil))
	if w := l.wire(); len(w) != 3 {
		t.Fatalf("wire %+v, want the next bulk ACK at once too", w)
	}
}

func TestConnectionTakingAnotherSlotSendsItsHeldAckFirst(t *testing.T) {
	// Find a port whose connection shares port 1's slot.
	a := flow{srcPort: 1, dstPort: 80}
	var port uint16
	for p := uint16(2); port == 0; p++ {
		if slotOf(flow{srcPort: p, dstPort: 80}) == slotOf(a) {
			port = p
		}
	}
	l := &link{}
	d := New(l, Options{Delay: time.Hour})
	defer d.Close()
	write(t, d, segment(1, ack, 100, 0, nil))
	write(t, d, segment(port, ack, 500, 10, nil))
	if w := l.wire(); len(w) != 2 || w[0].port != 1 || w[1].port != port {
		t.Fatalf("wire %+v, want connection 1's ACK, then the other's data", w)
	}
}
