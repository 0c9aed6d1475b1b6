package network

import (
	"encoding/binary"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/govirtio/govirtio/runtime/kernel"
)

// The program's sockets. The kernel turns socket system calls into calls
// of a kernel.SocketStack (runtime/kernel, "Sockets"); socketStack is the
// one over the network's gVisor stack, so that a program using Go's net
// package (net.Listen, net.Dial, http.ListenAndServe) reaches the network
// without importing this package beyond having it started. Its sockets
// are netstack endpoints; their waiter queues report events to the kernel,
// which feeds epoll and so Go's netpoller.

// socketStack makes netstack endpoints for the kernel's sockets.
type socketStack struct{ n *Network }

// ServeSockets makes this network answer the program's socket system
// calls; Start calls it. A later call by another Network takes over for
// the sockets opened after it.
func (n *Network) ServeSockets() { kernel.ServeSockets(socketStack{n}) }

// Socket implements kernel.SocketStack.
func (st socketStack) Socket(h *kernel.SocketHandle, domain, typ, protocol int) (kernel.Socket, syscall.Errno) {
	var netProto tcpip.NetworkProtocolNumber
	switch domain {
	case syscall.AF_INET:
		netProto = ipv4.ProtocolNumber
	case syscall.AF_INET6:
		netProto = ipv6.ProtocolNumber
	default:
		return nil, syscall.EAFNOSUPPORT
	}
	var trans tcpip.TransportProtocolNumber
	switch {
	case typ == syscall.SOCK_STREAM && (protocol == 0 || protocol == syscall.IPPROTO_TCP):
		trans = tcp.ProtocolNumber
	case typ == syscall.SOCK_DGRAM && (protocol == 0 || protocol == syscall.IPPROTO_UDP):
		trans = udp.ProtocolNumber
	default:
		return nil, syscall.EPROTONOSUPPORT
	}
	s := &socket{n: st.n, h: h, domain: domain, typ: typ, wq: new(waiter.Queue)}
	ep, err := st.n.Stack.NewEndpoint(trans, netProto, s.wq)
	if err != nil {
		return nil, errno(err)
	}
	s.ep = ep
	s.watch()
	return s, 0
}

// socket is one netstack endpoint behind a descriptor.
type socket struct {
	n      *Network
	h      *kernel.SocketHandle // reports the endpoint's events to the kernel
	domain int                  // AF_INET or AF_INET6: the address format
	typ    int                  // SOCK_STREAM or SOCK_DGRAM
	ep     tcpip.Endpoint
	wq     *waiter.Queue // the endpoint's (netstack makes it for an accepted one)
	entry  waiter.Entry  // on wq, for as long as the socket is open
	// shedding: a listener that stopped accepting while memory is short
	// (see Accept); it does not report itself readable meanwhile.
	shedding atomic.Bool
	closed   atomic.Bool
}

// watch has the endpoint's events reported to the kernel.
func (s *socket) watch() {
	s.entry.Init(s, waiter.EventIn|waiter.EventOut|waiter.EventErr|waiter.EventHUp|waiter.EventRdHUp)
	s.wq.EventRegister(&s.entry)
}

// NotifyEvent implements waiter.EventListener: netstack's callback, from
// whichever goroutine changed the endpoint.
func (s *socket) NotifyEvent(m waiter.EventMask) { s.h.Notify(uint32(m)) }

func (s *socket) Readiness() uint32 {
	r := s.ep.Readiness(waiter.AllEvents)
	if s.shedding.Load() {
		r &^= waiter.ReadableEvents
	}
	return uint32(r)
}

func (s *socket) Close() {
	s.closed.Store(true)
	s.wq.EventUnregister(&s.entry)
	s.ep.Close()
}

func (s *socket) Bind(addr []byte) syscall.Errno {
	fa, e := s.address(addr)
	if e != 0 {
		return e
	}
	return errno(s.ep.Bind(fa))
}

func (s *socket) Listen(backlog int) syscall.Errno {
	if s.typ != syscall.SOCK_STREAM {
		return syscall.EOPNOTSUPP
	}
	// netstack answers SYNs past the backlog with cookies: a backlog
	// sized to the memory left keeps a small machine alive (listen.go).
	backlog = min(max(backlog, 1), s.n.mem.backlog())
	return errno(s.ep.Listen(backlog))
}

func (s *socket) Accept(h *kernel.SocketHandle) (kernel.Socket, []byte, syscall.Errno) {
	// A listener sheds load as ListenTCP's do (listen.go): while memory
	// is short it accepts nothing and reports itself not readable, so
	// that the program's netpoller waits instead of trying again at once,
	// and looks at memory again every shedPoll; the connections wait in
	// netstack's queue, and the ones already accepted keep being served.
	if s.shedding.Load() || s.n.mem.short() {
		if !s.shedding.Swap(true) {
			s.n.acceptWaits.Add(1)
			s.shedUntilMemory()
		}
		return nil, nil, syscall.EAGAIN
	}
	var peer tcpip.FullAddress
	ep, wq, err := s.ep.Accept(&peer)
	if err != nil {
		return nil, nil, errno(err)
	}
	ns := &socket{n: s.n, h: h, domain: s.domain, typ: s.typ, ep: ep, wq: wq}
	ns.watch()
	return ns, s.sockaddr(peer), 0
}

// shedUntilMemory looks at memory every shedPoll until it is no longer
// short, then reports the listener readable again (an edge the program's
// netpoller waits for).
func (s *socket) shedUntilMemory() {
	time.AfterFunc(shedPoll, func() {
		if s.closed.Load() {
			return
		}
		if s.n.mem.short() {
			s.shedUntilMemory()
			return
		}
		s.shedding.Store(false)
		if s.ep.Readiness(waiter.ReadableEvents) != 0 {
			s.NotifyEvent(waiter.ReadableEvents)
		}
	})
}

func (s *socket) Connect(addr []byte) syscall.Errno {
	if s.typ == syscall.SOCK_DGRAM && len(addr) >= 2 && binary.LittleEndian.Uint16(addr) == syscall.AF_UNSPEC {
		return errno(s.ep.Disconnect())
	}
	fa, e := s.address(addr)
	if e != 0 {
		return e
	}
	return errno(s.ep.Connect(fa))
}

func (s *socket) ConnectResult() syscall.Errno {
	if err := s.ep.LastError(); err != nil {
		return errno(err)
	}
	if s.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) == 0 {
		return syscall.EINPROGRESS
	}
	return 0
}

func (s *socket) Name(peer bool) ([]byte, syscall.Errno) {
	var fa tcpip.FullAddress
	var err tcpip.Error
	if peer {
		fa, err = s.ep.GetRemoteAddress()
	} else {
		fa, err = s.ep.GetLocalAddress()
	}
	if err != nil {
		return nil, errno(err)
	}
	return s.sockaddr(fa), 0
}

// Message flags (include/linux/socket.h).
const (
	msgPeek  = 0x2
	msgTrunc = 0x20
)

func (s *socket) Recv(bufs [][]byte, flags int, wantFrom bool) (int, []byte, int, syscall.Errno) {
	w := &iovWriter{bufs: bufs}
	res, err := s.ep.Read(w, tcpip.ReadOptions{Peek: flags&msgPeek != 0, NeedRemoteAddr: wantFrom})
	if _, closed := err.(*tcpip.ErrClosedForReceive); closed {
		return 0, nil, 0, 0 // end of stream
	}
	if err != nil {
		return 0, nil, 0, errno(err)
	}
	n, msgFlags := res.Count, 0
	if res.Total > res.Count && s.typ == syscall.SOCK_DGRAM {
		msgFlags = msgTrunc
		if flags&msgTrunc != 0 {
			n = res.Total
		}
	}
	var from []byte
	if wantFrom && s.typ == syscall.SOCK_DGRAM {
		from = s.sockaddr(res.RemoteAddr)
	}
	return n, from, msgFlags, 0
}

func (s *socket) Send(bufs [][]byte, to []byte, flags int) (int, syscall.Errno) {
	var opts tcpip.WriteOptions
	if len(to) > 0 && s.typ == syscall.SOCK_DGRAM {
		fa, e := s.address(to)
		if e != 0 {
			return 0, e
		}
		opts.To = &fa
	}
	r := &iovReader{bufs: bufs}
	for _, b := range bufs {
		r.left += len(b)
	}
	n, err := s.ep.Write(r, opts)
	// netstack keeps the last reader in the endpoint (to reuse a
	// LimitedReader) for as long as the endpoint lives, TIME-WAIT
	// included: it must not keep the program's buffers alive too.
	r.bufs = nil
	if err != nil {
		if _, ok := err.(*tcpip.ErrWouldBlock); ok && n > 0 {
			return int(n), 0
		}
		return int(n), errno(err)
	}
	return int(n), 0
}

func (s *socket) Shutdown(how int) syscall.Errno {
	var f tcpip.ShutdownFlags
	switch how {
	case syscall.SHUT_RD:
		f = tcpip.ShutdownRead
	case syscall.SHUT_WR:
		f = tcpip.ShutdownWrite
	default:
		f = tcpip.ShutdownRead | tcpip.ShutdownWrite
	}
	return errno(s.ep.Shutdown(f))
}

// Socket options Go's net sets (include/uapi/asm-generic/socket.h,
// linux/tcp.h, linux/in6.h).
const (
	soReuseaddr  = 2
	soType       = 3
	soError      = 4
	soBroadcast  = 6
	soSndbuf     = 7
	soRcvbuf     = 8
	soKeepalive  = 9
	soLinger     = 13
	soReuseport  = 15
	soAcceptconn = 30
	soProtocol   = 38
	soDomain     = 39
	tcpNodelay   = 1
	tcpKeepidle  = 4
	tcpKeepintvl = 5
	tcpKeepcnt   = 6
	ipv6V6only   = 26
)

func (s *socket) SetOption(level, name int, value []byte) syscall.Errno {
	if name == soLinger && level == syscall.SOL_SOCKET {
		if len(value) < 8 {
			return syscall.EINVAL
		}
		s.ep.SocketOptions().SetLinger(tcpip.LingerOption{
			Enabled: binary.LittleEndian.Uint32(value) != 0,
			Timeout: time.Duration(int32(binary.LittleEndian.Uint32(value[4:]))) * time.Second,
		})
		return 0
	}
	if len(value) < 4 {
		return syscall.EINVAL
	}
	v := int(int32(binary.LittleEndian.Uint32(value)))
	so := s.ep.SocketOptions()
	switch {
	case level == syscall.SOL_SOCKET && name == soReuseaddr:
		so.SetReuseAddress(v != 0)
	case level == syscall.SOL_SOCKET && name == soReuseport:
		so.SetReusePort(v != 0)
	case level == syscall.SOL_SOCKET && name == soBroadcast:
		so.SetBroadcast(v != 0)
	case level == syscall.SOL_SOCKET && name == soKeepalive:
		so.SetKeepAlive(v != 0)
	case level == syscall.SOL_SOCKET && name == soSndbuf:
		so.SetSendBufferSize(int64(v)*2, true) // Linux doubles what it is given
	case level == syscall.SOL_SOCKET && name == soRcvbuf:
		so.SetReceiveBufferSize(int64(v)*2, true)
	case level == syscall.IPPROTO_TCP && name == tcpNodelay && s.typ == syscall.SOCK_STREAM:
		so.SetDelayOption(v == 0)
	case level == syscall.IPPROTO_TCP && name == tcpKeepidle && s.typ == syscall.SOCK_STREAM:
		if v < 1 {
			return syscall.EINVAL
		}
		opt := tcpip.KeepaliveIdleOption(time.Duration(v) * time.Second)
		return errno(s.ep.SetSockOpt(&opt))
	case level == syscall.IPPROTO_TCP && name == tcpKeepintvl && s.typ == syscall.SOCK_STREAM:
		if v < 1 {
			return syscall.EINVAL
		}
		opt := tcpip.KeepaliveIntervalOption(time.Duration(v) * time.Second)
		return errno(s.ep.SetSockOpt(&opt))
	case level == syscall.IPPROTO_TCP && name == tcpKeepcnt && s.typ == syscall.SOCK_STREAM:
		return errno(s.ep.SetSockOptInt(tcpip.KeepaliveCountOption, v))
	case level == syscall.IPPROTO_IPV6 && name == ipv6V6only && s.domain == syscall.AF_INET6:
		so.SetV6Only(v != 0)
	default:
		return syscall.ENOPROTOOPT
	}
	return 0
}

func (s *socket) Option(level, name int, value []byte) (int, syscall.Errno) {
	so := s.ep.SocketOptions()
	var v int
	switch {
	case level == syscall.SOL_SOCKET && name == soError:
		if err := s.ep.LastError(); err != nil {
			v = int(errno(err))
		}
	case level == syscall.SOL_SOCKET && name == soType:
		v = s.typ
	case level == syscall.SOL_SOCKET && name == soDomain:
		v = s.domain
	case level == syscall.SOL_SOCKET && name == soProtocol:
		v = syscall.IPPROTO_TCP
		if s.typ == syscall.SOCK_DGRAM {
			v = syscall.IPPROTO_UDP
		}
	case level == syscall.SOL_SOCKET && name == soAcceptconn:
		v = boolInt(so.GetAcceptConn())
	case level == syscall.SOL_SOCKET && name == soReuseaddr:
		v = boolInt(so.GetReuseAddress())
	case level == syscall.SOL_SOCKET && name == soReuseport:
		v = boolInt(so.GetReusePort())
	case level == syscall.SOL_SOCKET && name == soBroadcast:
		v = boolInt(so.GetBroadcast())
	case level == syscall.SOL_SOCKET && name == soKeepalive:
		v = boolInt(so.GetKeepAlive())
	case level == syscall.SOL_SOCKET && name == soSndbuf:
		v = int(so.GetSendBufferSize())
	case level == syscall.SOL_SOCKET && name == soRcvbuf:
		v = int(so.GetReceiveBufferSize())
	case level == syscall.SOL_SOCKET && name == soLinger:
		l := so.GetLinger()
		var b [8]byte
		binary.LittleEndian.PutUint32(b[:], uint32(boolInt(l.Enabled)))
		binary.LittleEndian.PutUint32(b[4:], uint32(l.Timeout/time.Second))
		return copy(value, b[:]), 0
	case level == syscall.IPPROTO_TCP && name == tcpNodelay && s.typ == syscall.SOCK_STREAM:
		v = boolInt(!so.GetDelayOption())
	case level == syscall.IPPROTO_TCP && name == tcpKeepidle && s.typ == syscall.SOCK_STREAM:
		var opt tcpip.KeepaliveIdleOption
		if err := s.ep.GetSockOpt(&opt); err != nil {
			return 0, errno(err)
		}
		v = int(time.Duration(opt) / time.Second)
	case level == syscall.IPPROTO_TCP && name == tcpKeepintvl && s.typ == syscall.SOCK_STREAM:
		var opt tcpip.KeepaliveIntervalOption
		if err := s.ep.GetSockOpt(&opt); err != nil {
			return 0, errno(err)
		}
		v = int(time.Duration(opt) / time.Second)
	case level == syscall.IPPROTO_TCP && name == tcpKeepcnt && s.typ == syscall.SOCK_STREAM:
		n, err := s.ep.GetSockOptInt(tcpip.KeepaliveCountOption)
		if err != nil {
			return 0, errno(err)
		}
		v = n
	case level == syscall.IPPROTO_IPV6 && name == ipv6V6only && s.domain == syscall.AF_INET6:
		v = boolInt(so.GetV6Only())
	default:
		return 0, syscall.ENOPROTOOPT
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return copy(value, b[:]), 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// address reads a struct sockaddr_in or sockaddr_in6 for this socket.
func (s *socket) address(b []byte) (tcpip.FullAddress, syscall.Errno) {
	if len(b) < 2 {
		return tcpip.FullAddress{}, syscall.EINVAL
	}
	family := binary.LittleEndian.Uint16(b)
	switch {
	case family == syscall.AF_INET && s.domain == syscall.AF_INET:
		if len(b) < syscall.SizeofSockaddrInet4 {
			return tcpip.FullAddress{}, syscall.EINVAL
		}
		return tcpip.FullAddress{Port: binary.BigEndian.Uint16(b[2:]), Addr: addrOrAny(b[4:8])}, 0
	case family == syscall.AF_INET6 && s.domain == syscall.AF_INET6:
		if len(b) < syscall.SizeofSockaddrInet6 {
			return tcpip.FullAddress{}, syscall.EINVAL
		}
		a := b[8:24]
		// A v4-mapped address reaches IPv4 through a dual-stack endpoint.
		if isV4Mapped(a) {
			return tcpip.FullAddress{Port: binary.BigEndian.Uint16(b[2:]), Addr: addrOrAny(a[12:])}, 0
		}
		return tcpip.FullAddress{Port: binary.BigEndian.Uint16(b[2:]), Addr: addrOrAny(a)}, 0
	}
	return tcpip.FullAddress{}, syscall.EAFNOSUPPORT
}

// addrOrAny is the address in b, or none (any address) when b is all
// zeroes, as netstack wants the wildcard.
func addrOrAny(b []byte) tcpip.Address {
	for _, c := range b {
		if c != 0 {
			return tcpip.AddrFromSlice(b)
		}
	}
	return tcpip.Address{}
}

func isV4Mapped(a []byte) bool {
	for _, c := range a[:10] {
		if c != 0 {
			return false
		}
	}
	return a[10] == 0xff && a[11] == 0xff
}

// sockaddr writes fa in this socket's address format: an IPv4 address on
// an AF_INET6 socket is v4-mapped, as Linux reports it.
func (s *socket) sockaddr(fa tcpip.FullAddress) []byte {
	a := fa.Addr.AsSlice()
	if s.domain == syscall.AF_INET {
		b := make([]byte, syscall.SizeofSockaddrInet4)
		binary.LittleEndian.PutUint16(b, syscall.AF_INET)
		binary.BigEndian.PutUint16(b[2:], fa.Port)
		copy(b[4:8], a)
		return b
	}
	b := make([]byte, syscall.SizeofSockaddrInet6)
	binary.LittleEndian.PutUint16(b, syscall.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], fa.Port)
	if len(a) == 4 {
		b[18], b[19] = 0xff, 0xff
		copy(b[20:24], a)
	} else {
		copy(b[8:24], a)
	}
	return b
}

// iovWriter fills a list of buffers in turn.
type iovWriter struct {
	bufs [][]byte
}

func (w *iovWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && len(w.bufs) > 0 {
		c := copy(w.bufs[0], p)
		p, n = p[c:], n+c
		w.bufs[0] = w.bufs[0][c:]
		if len(w.bufs[0]) == 0 {
			w.bufs = w.bufs[1:]
		}
	}
	if len(p) > 0 {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// iovReader reads a list of buffers in turn (a tcpip.Payloader).
type iovReader struct {
	bufs [][]byte
	left int
}

func (r *iovReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for len(p) > 0 && len(r.bufs) > 0 {
		c := copy(p, r.bufs[0])
		p, n = p[c:], n+c
		r.bufs[0] = r.bufs[0][c:]
		if len(r.bufs[0]) == 0 {
			r.bufs = r.bufs[1:]
		}
	}
	r.left -= n
	return n, nil
}

func (r *iovReader) Len() int { return r.left }

// errno is what Linux returns for a netstack error.
func errno(err tcpip.Error) syscall.Errno {
	switch err.(type) {
	case nil:
		return 0
	case *tcpip.ErrWouldBlock:
		return syscall.EAGAIN
	case *tcpip.ErrConnectStarted:
		return syscall.EINPROGRESS
	case *tcpip.ErrAlreadyConnecting:
		return syscall.EALREADY
	case *tcpip.ErrAlreadyConnected:
		return syscall.EISCONN
	case *tcpip.ErrNotConnected:
		return syscall.ENOTCONN
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET
	case *tcpip.ErrConnectionAborted:
		return syscall.ECONNABORTED
	case *tcpip.ErrAborted, *tcpip.ErrClosedForSend:
		return syscall.EPIPE
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT
	case *tcpip.ErrPortInUse:
		return syscall.EADDRINUSE
	case *tcpip.ErrNoPortAvailable, *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		return syscall.ENETUNREACH
	case *tcpip.ErrHostUnreachable:
		return syscall.EHOSTUNREACH
	case *tcpip.ErrHostDown:
		return syscall.EHOSTDOWN
	case *tcpip.ErrMessageTooLong:
		return syscall.EMSGSIZE
	case *tcpip.ErrNoBufferSpace:
		return syscall.ENOBUFS
	case *tcpip.ErrDestinationRequired:
		return syscall.EDESTADDRREQ
	case *tcpip.ErrAddressFamilyNotSupported:
		return syscall.EAFNOSUPPORT
	case *tcpip.ErrBroadcastDisabled:
		return syscall.EACCES
	case *tcpip.ErrNotPermitted:
		return syscall.EPERM
	case *tcpip.ErrBadAddress, *tcpip.ErrBadBuffer:
		return syscall.EFAULT
	case *tcpip.ErrUnknownProtocol:
		return syscall.EPROTONOSUPPORT
	case *tcpip.ErrUnknownProtocolOption:
		return syscall.ENOPROTOOPT
	case *tcpip.ErrNotSupported, *tcpip.ErrQueueSizeNotSupported:
		return syscall.EOPNOTSUPP
	case *tcpip.ErrEndpointBusy:
		return syscall.EBUSY
	case *tcpip.ErrClosedForReceive:
		return 0
	}
	return syscall.EINVAL // ErrInvalidEndpointState, ErrAlreadyBound, ErrInvalidOptionValue...
}
