package delayedack

import (
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// DefaultDelay is how long a pure ACK waits for data to carry it when
// Options leave it zero.
const DefaultDelay = time.Millisecond

// tableSize is the number of connections tracked at once (a power of
// two): a direct-mapped table, cheaper per packet than a map under
// emulation, where every instruction counts. A connection that collides
// with another takes its slot; an ACK held there goes out first.
const tableSize = 64

// bulkAck is how far an acknowledgement must advance past the previous one
// for the ACK to go out at once: two full-sized segments (RFC 1122
// §4.2.3.2: a receiver acknowledges at least every second one). Smaller
// advances, such as a request's, wait for the response.
const bulkAck = 2 * 1460

// Options configure a Discipline.
type Options struct {
	// Delay is the longest a pure ACK is held; zero means DefaultDelay.
	Delay time.Duration
}

// Stats count what the discipline did with pure ACKs.
type Stats struct {
	Held       uint64 // pure ACKs held back
	Superseded uint64 // held ACKs dropped because a later packet carried the acknowledgement
	Expired    uint64 // held ACKs sent when their delay passed (or at Close)
	Flushed    uint64 // held ACKs sent at once ahead of a packet that did not supersede them
}

// flow identifies a TCP connection by its addresses and ports as the
// packet carries them.
type flow struct {
	src, dst         tcpip.Address
	srcPort, dstPort uint16
}

// slot is what the discipline knows of one connection.
type slot struct {
	f        flow
	valid    bool                // f is a connection seen
	acked    bool                // ack holds the last acknowledgement sent
	ack      uint32              // the last acknowledgement number sent on f
	held     *stack.PacketBuffer // the pure ACK waiting, with a reference of its own; nil if none
	heldAck  uint32              // its acknowledgement number
	deadline time.Time           // when it goes out by itself
}

// Discipline implements stack.QueueingDiscipline over a link writer.
type Discipline struct {
	lower stack.LinkWriter // where packets go
	delay time.Duration    // constant

	mu     sync.Mutex      // guards everything below and the writes to lower
	table  [tableSize]slot // connections, by slotOf
	nheld  int             // slots with an ACK held
	timer  *time.Timer     // fires at the earliest deadline while nheld > 0
	closed bool            // Close was called: nothing is held any more

	held, superseded, expired, flushed atomic.Uint64
}

var _ stack.QueueingDiscipline = (*Discipline)(nil)

// New returns a discipline writing to lower.
func New(lower stack.LinkWriter, opts Options) *Discipline {
	d := &Discipline{lower: lower, delay: opts.Delay}
	if d.delay <= 0 {
		d.delay = DefaultDelay
	}
	d.timer = time.AfterFunc(time.Hour, d.expire)
	d.timer.Stop()
	return d
}

// Stats returns the counters.
func (d *Discipline) Stats() Stats {
	return Stats{Held: d.held.Load(), Superseded: d.superseded.Load(), Expired: d.expired.Load(), Flushed: d.flushed.Load()}
}

// WritePacket implements stack.QueueingDiscipline. The caller keeps its
// reference to pkt; a held packet gets a reference of its own.
func (d *Discipline) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	f, ack, flags, pure, ok := classify(pkt)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !ok {
		return d.write(nil, pkt)
	}
	s := &d.table[slotOf(f)]
	var first *stack.PacketBuffer // a held ACK that must go ahead of pkt
	if s.valid && s.f != f {
		first = d.take(s) // another connection's slot: its ACK goes now
		*s = slot{}
	}
	if !s.valid {
		s.f, s.valid = f, true
	}
	hasAck := flags&header.TCPFlagAck != 0
	switch {
	case s.held == nil && first == nil && pure && !(s.acked && int32(ack-s.ack) >= bulkAck):
		s.held, s.heldAck = pkt.IncRef(), ack
		s.deadline = time.Now().Add(d.delay)
		d.held.Add(1)
		if d.nheld++; d.nheld == 1 {
			d.timer.Reset(d.delay)
		}
		return nil
	case s.held != nil && hasAck && seqnum.Value(s.heldAck).LessThanEq(seqnum.Value(ack)) && !(pure && ack == s.heldAck):
		// pkt acknowledges everything the held ACK did, which is now
		// redundant. (A pure ACK here means the connection
		// acknowledges again before the delay passed: it goes now.)
		d.take(s).DecRef()
		d.superseded.Add(1)
	case s.held != nil:
		// A duplicate ACK, a window update, or a packet without a newer
		// acknowledgement: the held ACK goes first.
		first = d.take(s)
		d.flushed.Add(1)
	}
	if hasAck {
		s.ack, s.acked = ack, true
	}
	return d.write(first, pkt)
}

// take removes s's held ACK, if any, and returns it with the discipline's
// reference; with none left held the timer stops, so that an idle machine
// is not woken for nothing.
func (d *Discipline) take(s *slot) *stack.PacketBuffer {
	p := s.held
	if p == nil {
		return nil
	}
	s.held = nil
	s.ack, s.acked = s.heldAck, true
	if d.nheld--; d.nheld == 0 {
		d.timer.Stop()
	}
	return p
}

// write sends first (if not nil, releasing the discipline's reference) and
// then pkt, in one batch. It fails if pkt did not go out.
func (d *Discipline) write(first, pkt *stack.PacketBuffer) tcpip.Error {
	var list stack.PacketBufferList
	if first != nil {
		list.PushBack(first)
	}
	list.PushBack(pkt)
	n, err := d.lower.WritePackets(list)
	if first != nil {
		first.DecRef()
	}
	if n < list.Len() && err == nil {
		err = &tcpip.ErrNoBufferSpace{}
	}
	return err
}

// expire sends the held ACKs whose delay passed (all of them once closed)
// and re-arms the timer for the rest.
func (d *Discipline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var list stack.PacketBufferList
	var next time.Time
	for i := range d.table {
		s := &d.table[i]
		switch {
		case s.held == nil:
		case d.closed || !s.deadline.After(now):
			list.PushBack(d.take(s))
			d.expired.Add(1)
		case next.IsZero() || s.deadline.Before(next):
			next = s.deadline
		}
	}
	if list.Len() > 0 {
		d.lower.WritePackets(list)
		list.DecRef()
	}
	if !next.IsZero() {
		d.timer.Reset(next.Sub(now))
	}
}

// Close sends what is held and stops holding.
func (d *Discipline) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.expire()
}

// slotOf is f's slot in the table.
func slotOf(f flow) int {
	h := uint32(f.srcPort)*0x9e3779b1 ^ uint32(f.dstPort)
	return int(h>>16^h) & (tableSize - 1)
}

// classify reads what the rules need from an outgoing packet: its
// connection, acknowledgement number and flags, and whether it is a pure
// ACK. ok is false for anything but TCP over IPv4 or IPv6 with sane
// headers.
func classify(pkt *stack.PacketBuffer) (f flow, ack uint32, flags header.TCPFlags, pure, ok bool) {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return
	}
	switch pkt.NetworkProtocolNumber {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(pkt.NetworkHeader().Slice())
		if len(ip) < header.IPv4MinimumSize {
			return
		}
		f.src, f.dst = ip.SourceAddress(), ip.DestinationAddress()
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(pkt.NetworkHeader().Slice())
		if len(ip) < header.IPv6MinimumSize {
			return
		}
		f.src, f.dst = ip.SourceAddress(), ip.DestinationAddress()
	default:
		return
	}
	tcp := header.TCP(pkt.TransportHeader().Slice())
	if len(tcp) < header.TCPMinimumSize || int(tcp.DataOffset()) > len(tcp) || tcp.DataOffset() < header.TCPMinimumSize {
		return
	}
	f.srcPort, f.dstPort = tcp.SourcePort(), tcp.DestinationPort()
	ack, flags = tcp.AckNumber(), tcp.Flags()
	const notPure = header.TCPFlagSyn | header.TCPFlagFin | header.TCPFlagRst | header.TCPFlagUrg
	pure = flags&header.TCPFlagAck != 0 && flags&notPure == 0 && pkt.Data().Size() == 0 &&
		len(header.ParseTCPOptions(tcp[header.TCPMinimumSize:tcp.DataOffset()]).SACKBlocks) == 0
	return f, ack, flags, pure, true
}
