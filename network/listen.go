package network

import (
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/govirtio/govirtio/runtime/kernel"
)

// Shedding load when memory runs short. An image has no swap, and the
// kernel cannot take back a page the Go runtime has committed: running out
// of memory kills the program, with every connection it was serving. Each
// TCP connection costs memory before the program sees it (netstack's
// endpoint, its buffers, and then the goroutines and buffers of whoever
// serves it), so a listener:
//   - keeps a listen backlog in proportion to the memory free when it
//     starts (netstack answers SYNs past it with SYN cookies, and a
//     handshake that completes while the backlog is full waits for the
//     client to retry; netstack's own default, 4096 waiting endpoints,
//     is more than a small machine holds),
//   - keeps at most as many of the connections it accepted open as that
//     memory allows at connBudget each, and
//   - stops accepting while the RAM no one holds is below a reserve, until
//     the connections already served give some back. Heap the Go runtime
//     holds free is not counted (the kernel cannot lend it elsewhere);
//     instead, on finding memory short, the listener has the runtime
//     collect and return its free heap (debug.FreeOSMemory: under load it
//     held about as much free as in use), at most once per freeEvery.
//
// New clients then wait, or give up on their own timeouts, and the
// connections already accepted keep being served. Measured with 400
// keep-alive connections hammering httpd over tap in 24 MiB of RAM: before,
// the guest died ("out of memory backing a page") in every run; now it
// serves 3500-4500 requests in 10 s and lives.
const (
	// minReserve and reserveShare set the reserve: the larger of
	// minReserve and reserveShare of the RAM.
	minReserve   = 2 << 20
	reserveShare = 1.0 / 16
	// backlogPerConn is the memory a backlog entry is budgeted (netstack's
	// endpoint with its first buffers, and a serving goroutine later); the
	// backlog is the free memory divided by it, at least minBacklog and
	// at most maxBacklog.
	backlogPerConn = 256 << 10
	// connBudget is the memory an open connection is budgeted (netstack's
	// endpoint and buffers, the serving goroutine's stack and buffers:
	// 25-30 KiB measured idle with net/http, several times that while it
	// works, more on a loaded host where requests pile up): the
	// listener keeps at most the free memory at Listen over it open.
	connBudget = 128 << 10
	minConns   = 16
	maxConns   = 1 << 16
	minBacklog = 16
	maxBacklog = 4096
	// shedPoll is how often a listener that stopped accepting looks at
	// memory again.
	shedPoll = 20 * time.Millisecond
	// freeEvery spaces the forced collections.
	freeEvery = time.Second
)

// memoryGauge tells how much memory is left. Off the bare-metal kernel
// (tests on a host) it knows nothing and never reports a shortage.
type memoryGauge struct {
	lastFree atomic.Int64 // when short last forced a collection (UnixNano)
	// shortForTest, when set, answers short in place of the kernel's
	// figures (host-side tests).
	shortForTest func() bool
}

func newMemoryGauge() *memoryGauge { return &memoryGauge{} }

// left returns the RAM no one holds and the RAM's size; ok=false when the
// kernel does not say.
func (g *memoryGauge) left() (left, total uint64, ok bool) {
	ks, err := kernel.ReadStats()
	if err != nil || ks.MemoryTotal == 0 {
		return 0, 0, false
	}
	return ks.MemoryFree, ks.MemoryTotal, true
}

// short reports whether the memory left is below the reserve, after
// having the runtime return its free heap if that was not done lately.
func (g *memoryGauge) short() bool {
	if g.shortForTest != nil {
		return g.shortForTest()
	}
	left, total, ok := g.left()
	reserve := max(minReserve, reserveShare*float64(total))
	if !ok || float64(left) >= reserve {
		return false
	}
	now, last := time.Now().UnixNano(), g.lastFree.Load()
	if now-last < int64(freeEvery) || !g.lastFree.CompareAndSwap(last, now) {
		return true
	}
	debug.FreeOSMemory()
	left, _, _ = g.left()
	return float64(left) < reserve
}

// backlog is the listen backlog for the memory left now.
func (g *memoryGauge) backlog() int {
	left, _, ok := g.left()
	if !ok {
		return maxBacklog
	}
	return int(min(max(left/backlogPerConn, minBacklog), maxBacklog))
}

// listener is a TCP listener that stops accepting while memory is short
// or while as many connections are open as the memory allows.
type listener struct {
	*gonet.TCPListener
	mem    *memoryGauge
	slots  chan struct{}  // one token per open connection it accepted
	waits  *atomic.Uint64 // Accept calls that waited
	closed chan struct{}  // closed by Close
	once   sync.Once
}

// Accept waits for a connection slot and for memory, then accepts.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.waits.Add(1)
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	if l.mem.short() {
		l.waits.Add(1)
		for l.mem.short() {
			select {
			case <-l.closed:
				<-l.slots
				return nil, net.ErrClosed
			case <-time.After(shedPoll):
			}
		}
	}
	c, err := l.TCPListener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, slots: l.slots}, nil
}

// slotConn gives its listener's slot back when closed.
type slotConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *slotConn) Close() error {
	c.once.Do(func() { <-c.slots })
	return c.Conn.Close()
}

// CloseWrite shuts the sending side, as the connection it wraps does
// (net/http uses it to close a connection cleanly).
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close stops the listener; an Accept waiting for memory returns.
func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.TCPListener.Close()
}

// ListenTCP listens on port of every address of the network, with a
// backlog and accepting bounded by memory (see highWater).
func (n *Network) ListenTCP(port uint16) (net.Listener, error) {
	var wq waiter.Queue
	ep, terr := n.Stack.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("network: listen on TCP port %d: %s", port, terr)
	}
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("network: listen on TCP port %d: bind: %s", port, terr)
	}
	if terr := ep.Listen(n.mem.backlog()); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("network: listen on TCP port %d: %s", port, terr)
	}
	conns := maxConns
	if left, _, ok := n.mem.left(); ok {
		conns = int(min(max(left/connBudget, minConns), maxConns))
	}
	return &listener{
		TCPListener: gonet.NewTCPListener(n.Stack, &wq, ep),
		mem:         n.mem,
		slots:       make(chan struct{}, conns),
		waits:       &n.acceptWaits,
		closed:      make(chan struct{}),
	}, nil
}
