package kernel

import (
	"encoding/binary"
	"syscall"
	"testing"
	"unsafe"
)

// The socket layer on the host: the kernel's handlers (socket.go) and the
// serve loop's decoding (sockserve.go) run as they do in an image, the
// serve loop driven by hand on a thread of its own, over fakeStack, an
// in-memory TCP-like stack whose connections complete when the test says.

// fakeStack is a SocketStack of stream sockets on port numbers.
type fakeStack struct {
	listeners map[uint16]*fakeSock
	pending   []*fakeSock // connects in progress, completed by complete
}

type fakeSock struct {
	st        *fakeStack
	h         *SocketHandle
	port      uint16 // bound port
	peerPort  uint16
	listening bool
	queue     []*fakeSock // listener: connections to accept
	peer      *fakeSock
	target    uint16 // connect in progress to this port
	buf       []byte // received, unread
	eof       bool   // the peer shut its sending side
	connected bool
	err       syscall.Errno // pending SO_ERROR
	closed    bool
}

func (st *fakeStack) Socket(h *SocketHandle, domain, typ, protocol int) (Socket, syscall.Errno) {
	if typ != syscall.SOCK_STREAM {
		return nil, syscall.EPROTONOSUPPORT
	}
	return &fakeSock{st: st, h: h}, 0
}

func sockaddr4(port uint16) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, syscall.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], []byte{10, 0, 2, 15})
	return b
}

func (s *fakeSock) Bind(addr []byte) syscall.Errno {
	s.port = binary.BigEndian.Uint16(addr[2:])
	return 0
}

func (s *fakeSock) Listen(int) syscall.Errno {
	s.listening = true
	s.st.listeners[s.port] = s
	return 0
}

func (s *fakeSock) Accept(h *SocketHandle) (Socket, []byte, syscall.Errno) {
	if len(s.queue) == 0 {
		return nil, nil, syscall.EAGAIN
	}
	ns := s.queue[0]
	s.queue = s.queue[1:]
	ns.h = h
	return ns, sockaddr4(ns.peerPort), 0
}

func (s *fakeSock) Connect(addr []byte) syscall.Errno {
	s.target = binary.BigEndian.Uint16(addr[2:])
	s.port = 40000
	s.st.pending = append(s.st.pending, s)
	return syscall.EINPROGRESS
}

// complete finishes the connects in progress: to a listener they connect,
// elsewhere they are refused.
func (st *fakeStack) complete() {
	for _, s := range st.pending {
		l := st.listeners[s.target]
		if l == nil {
			s.err = syscall.ECONNREFUSED
			s.h.Notify(epollErr | epollHup)
			continue
		}
		srv := &fakeSock{st: st, port: s.target, peerPort: s.port, peer: s, connected: true}
		s.peer, s.peerPort, s.connected = srv, s.target, true
		l.queue = append(l.queue, srv)
		l.h.Notify(epollIn)
		s.h.Notify(epollOut)
	}
	st.pending = nil
}

func (s *fakeSock) ConnectResult() syscall.Errno {
	if e := s.err; e != 0 {
		s.err = 0
		return e
	}
	if !s.connected {
		return syscall.EINPROGRESS
	}
	return 0
}

func (s *fakeSock) Name(peer bool) ([]byte, syscall.Errno) {
	if peer {
		if !s.connected {
			return nil, syscall.ENOTCONN
		}
		return sockaddr4(s.peerPort), 0
	}
	return sockaddr4(s.port), 0
}

func (s *fakeSock) Recv(bufs [][]byte, flags int, wantFrom bool) (int, []byte, int, syscall.Errno) {
	if len(s.buf) == 0 {
		if s.eof {
			return 0, nil, 0, 0
		}
		return 0, nil, 0, syscall.EAGAIN
	}
	n := 0
	for _, b := range bufs {
		c := copy(b, s.buf)
		s.buf, n = s.buf[c:], n+c
	}
	return n, nil, 0, 0
}

func (s *fakeSock) Send(bufs [][]byte, to []byte, flags int) (int, syscall.Errno) {
	if s.peer == nil {
		return 0, syscall.ENOTCONN
	}
	n := 0
	for _, b := range bufs {
		s.peer.buf = append(s.peer.buf, b...)
		n += len(b)
	}
	if s.peer.h != nil {
		s.peer.h.Notify(epollIn)
	}
	return n, 0
}

func (s *fakeSock) Shutdown(how int) syscall.Errno {
	if how != syscall.SHUT_RD && s.peer != nil {
		s.peer.eof = true
		if s.peer.h != nil {
			s.peer.h.Notify(epollIn | epollRdHup)
		}
	}
	return 0
}

func (s *fakeSock) SetOption(level, name int, value []byte) syscall.Errno { return 0 }

func (s *fakeSock) Option(level, name int, value []byte) (int, syscall.Errno) {
	if level == syscall.SOL_SOCKET && name == syscall.SO_ERROR {
		e := s.err
		s.err = 0
		binary.LittleEndian.PutUint32(value, uint32(e))
		return 4, 0
	}
	return 0, syscall.ENOPROTOOPT
}

func (s *fakeSock) Readiness() uint32 {
	r := uint32(0)
	switch {
	case s.listening:
		if len(s.queue) > 0 {
			r |= epollIn
		}
	case s.connected:
		r |= epollOut
		if len(s.buf) > 0 || s.eof {
			r |= epollIn
		}
		if s.eof {
			r |= epollRdHup
		}
	case s.err != 0:
		r |= epollErr | epollHup
	}
	return r
}

func (s *fakeSock) Close() {
	if s.closed {
		panic("a socket closed twice")
	}
	s.closed = true
	if s.listening && s.st.listeners[s.port] == s {
		delete(s.st.listeners, s.port)
	}
}

// sockTest is a kernel with a serve thread and the fake stack.
type sockTest struct {
	*testKernel
	t      *testing.T
	st     *fakeStack
	server int32 // the serve thread
	app    int32 // the thread making socket calls
	req    *sockRequest
}

func setupSockets(t *testing.T) *sockTest {
	k := setupKernel(t)
	sockCalls = [maxThreads]sockCall{}
	sockQHead, sockQTail, sockProvided, stats = -1, -1, false, Stats{}
	sockPending, deferHead, deferLen = 0, 0, 0
	closeQueueFD, closeHead, closeLen = -1, 0, 0
	st := &fakeStack{listeners: map[uint16]*fakeSock{}}
	sockets = sockServer{closeFD: -1}
	sockets.stack.Store(&stackBox{st})
	socketReady = func(handle, word uint64) { sysSocketReady(handle, word) }
	t.Cleanup(func() {
		socketReady = func(handle, word uint64) { syscall.RawSyscall(SysSocketReady, uintptr(handle), uintptr(word), 0) }
	})
	_, rb := k.at(0x70000, int(unsafe.Sizeof(sockRequest{})))
	s := &sockTest{testKernel: k, t: t, st: st, app: current, req: (*sockRequest)(unsafe.Pointer(&rb[0]))}
	s.server = newThread()
	// The serve thread waits for its first call.
	on(s.server)
	call(SysSocketServe, 0, 0, 0, 0, s.reqVA())
	on(s.app)
	return s
}

// on makes thread i the running one.
func on(i int32) {
	current = i
	threads[i].state = threadRunning
}

// serveAll has the serve thread answer every call handed to it, as the
// serve loop does: serve the request in its buffer, answer it and wait
// for the next in one SysSocketServe.
func (s *sockTest) serveAll() {
	s.t.Helper()
	saved := current
	defer func() { current = saved }()
	for i := 0; threads[s.server].state != threadBlocked; i++ {
		if i == 100 {
			s.t.Fatal("serve loop did not drain")
		}
		on(s.server)
		result, ready, readyNew := sockets.handle(s.req, make([]byte, 64))
		call(SysSocketServe, s.req.Tag, uint64(result), ready, readyNew, s.reqVA())
	}
}

func (s *sockTest) reqVA() uint64 { return uint64(uintptr(unsafe.Pointer(s.req))) }

// do makes socket call nr on the app thread and serves it; it returns
// the result, or blocked=true when the call still waits.
func (s *sockTest) do(nr uint64, args ...uint64) (r int64, blocked bool) {
	s.t.Helper()
	on(s.app)
	_, r = call(nr, args...)
	if threads[s.app].state != threadBlocked {
		return r, false
	}
	s.serveAll()
	if threads[s.app].state == threadBlocked {
		return 0, true
	}
	return int64(threads[s.app].frame.RAX), false
}

func (s *sockTest) mustDo(nr uint64, args ...uint64) int64 {
	s.t.Helper()
	r, blocked := s.do(nr, args...)
	if blocked {
		s.t.Fatalf("system call %d blocked", nr)
	}
	return r
}

// addr puts a sockaddr_in for port in user memory at off.
func (s *sockTest) addr(off uint64, port uint16) uint64 {
	va, b := s.at(off, 16)
	copy(b, sockaddr4(port))
	return va
}

// connection opens a listener on port, connects a non-blocking client
// to it and accepts the server's end with accept4 flags.
func (s *sockTest) connection(port uint16, flags uint64) (ln, cl, srv int64) {
	s.t.Helper()
	ln = s.listener(port)
	cl = s.mustDo(sysSocket, afInet, sockStream|sockNonblock, 0)
	s.mustDo(sysConnect, uint64(cl), s.addr(0x100, port), 16)
	s.st.complete()
	srv = s.mustDo(sysAccept4, uint64(ln), 0, 0, flags)
	if srv < 0 {
		s.t.Fatalf("accept4 returned %d", srv)
	}
	return ln, cl, srv
}

// listener opens a non-blocking listening socket on port.
func (s *sockTest) listener(port uint16) int64 {
	fd := s.mustDo(sysSocket, afInet, sockStream|sockNonblock|sockCloexec, 0)
	if fd < 0 {
		s.t.Fatalf("socket returned %d", fd)
	}
	if r := s.mustDo(sysBind, uint64(fd), s.addr(0x100, port), 16); r != 0 {
		s.t.Fatalf("bind returned %d", r)
	}
	if r := s.mustDo(sysListen, uint64(fd), 128); r != 0 {
		s.t.Fatalf("listen returned %d", r)
	}
	return fd
}

func TestSocketWithoutAStackIsEAFNOSUPPORT(t *testing.T) {
	setupSockets(t)
	sockProvided = false
	if _, r := call(sysSocket, afInet, sockStream, 0); r != -eAFNOSUPPORT {
		t.Errorf("socket with no stack serving returned %d, want -EAFNOSUPPORT", r)
	}
	if stats.SocketNoProvider != 1 {
		t.Errorf("SocketNoProvider = %d", stats.SocketNoProvider)
	}
}

func TestSocketIsAnsweredByTheKernelAlone(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	// Go makes socket, getsockname and getpeername as raw system calls,
	// holding its P: they must not wait for the serve loop.
	on(s.app)
	_, fd := call(sysSocket, afInet, sockStream|sockNonblock|sockCloexec, 0)
	if fd < 3 || threads[s.app].state != threadRunning {
		t.Fatalf("socket returned %d, thread state %d", fd, threads[s.app].state)
	}
	name, nb := s.at(0x200, 16)
	lenp, lb := s.at(0x300, 4)
	le64.PutUint32(lb, 16)
	if _, r := call(sysGetsockname, uint64(fd), name, lenp); r != 0 || le64.Uint16(nb) != afInet || le64.Uint32(lb) != 16 {
		t.Errorf("getsockname of a new socket: %d, family %d, length %d; want the IPv4 wildcard", r, le64.Uint16(nb), le64.Uint32(lb))
	}
	if _, r := call(sysGetpeername, uint64(fd), name, lenp); r != -eNOTCONN {
		t.Errorf("getpeername of a new socket returned %d, want -ENOTCONN", r)
	}
	// The stack never saw it: closing it needs no round trip.
	if _, r := call(sysClose, uint64(fd)); r != 0 || threads[s.app].state != threadRunning {
		t.Errorf("close of an unserved socket: %d, state %d", r, threads[s.app].state)
	}
	if _, r := call(sysSocket, 1 /* AF_UNIX */, sockStream, 0); r != -eAFNOSUPPORT {
		t.Errorf("AF_UNIX socket returned %d", r)
	}
	if _, r := call(sysSocket, afInet, 3 /* SOCK_RAW */, 0); r != -ePROTONOSUPPORT {
		t.Errorf("SOCK_RAW socket returned %d", r)
	}
}

func TestNonblockingAcceptIsEAGAINUntilAConnectionEdge(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	ln := s.listener(80)
	_, ep := call(sysEpollCreate1, 0)
	s.watch(t, ep, ln, epollIn|epollOut|epollRdHup|epollET)
	if got := s.wait(t, ep, 8); len(got) != 0 {
		t.Errorf("an idle listener reported %v", got)
	}
	name, nb := s.at(0x200, 16)
	lenp, lb := s.at(0x300, 4)
	le64.PutUint32(lb, 16)
	if _, r := call(sysGetsockname, uint64(ln), name, lenp); r != 0 || binary.BigEndian.Uint16(nb[2:]) != 80 {
		t.Errorf("getsockname of the listener: %d, port %d; want 80", r, binary.BigEndian.Uint16(nb[2:]))
	}
	if r := s.mustDo(sysAccept4, uint64(ln), 0, 0, sockNonblock|sockCloexec); r != -eAGAIN {
		t.Fatalf("accept4 with nothing waiting returned %d, want -EAGAIN", r)
	}
	if openFiles != 5 {
		t.Errorf("a failed accept left %d files open, want 5", openFiles)
	}

	cl := s.mustDo(sysSocket, afInet, sockStream|sockNonblock, 0)
	s.watch(t, ep, cl, epollIn|epollOut|epollRdHup|epollET)
	if r := s.mustDo(sysConnect, uint64(cl), s.addr(0x100, 80), 16); r != -eINPROGRESS {
		t.Fatalf("non-blocking connect returned %d, want -EINPROGRESS", r)
	}
	s.st.complete()
	got := s.wait(t, ep, 8)
	if len(got) != 2 {
		t.Fatalf("after the handshake epoll reported %v, want the listener and the client", got)
	}
	peer, pb := s.at(0x400, 16)
	plen, plb := s.at(0x500, 4)
	le64.PutUint32(plb, 16)
	c := s.mustDo(sysAccept4, uint64(ln), peer, plen, sockNonblock|sockCloexec)
	if c < 0 || binary.BigEndian.Uint16(pb[2:]) != 40000 || le64.Uint32(plb) != 16 {
		t.Fatalf("accept4: fd %d, peer port %d, length %d", c, binary.BigEndian.Uint16(pb[2:]), le64.Uint32(plb))
	}
	if r := s.mustDo(sysAccept4, uint64(ln), 0, 0, 0); r != -eAGAIN {
		t.Errorf("second accept4 returned %d, want -EAGAIN", r)
	}
	// The accepted socket's addresses come from the kernel at once.
	le64.PutUint32(lb, 16)
	if _, r := call(sysGetpeername, uint64(c), name, lenp); r != 0 || binary.BigEndian.Uint16(nb[2:]) != 40000 {
		t.Errorf("getpeername of the accepted socket: %d, port %d", r, binary.BigEndian.Uint16(nb[2:]))
	}
	if s.mustDo(sysClose, uint64(c)) != 0 || s.mustDo(sysClose, uint64(ln)) != 0 {
		t.Errorf("close failed")
	}
}

func TestNonblockingConnectReportsItsOutcomeThroughSOError(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	s.listener(80)
	_, ep := call(sysEpollCreate1, 0)
	for _, c := range []struct {
		port uint16
		want int64
	}{{80, 0}, {81, int64(syscall.ECONNREFUSED)}} {
		fd := s.mustDo(sysSocket, afInet, sockStream|sockNonblock, 0)
		s.watch(t, ep, fd, epollIn|epollOut|epollRdHup|epollET)
		if r := s.mustDo(sysConnect, uint64(fd), s.addr(0x100, c.port), 16); r != -eINPROGRESS {
			t.Fatalf("connect to %d returned %d, want -EINPROGRESS", c.port, r)
		}
		s.st.complete()
		if got := s.wait(t, ep, 8); len(got) != 1 || got[0] != fd {
			t.Fatalf("connect to %d: epoll reported %v", c.port, got)
		}
		val, vb := s.at(0x600, 4)
		vlen, vlb := s.at(0x700, 4)
		le64.PutUint32(vlb, 4)
		if r := s.mustDo(sysGetsockopt, uint64(fd), syscall.SOL_SOCKET, syscall.SO_ERROR, val, vlen); r != 0 || int64(le64.Uint32(vb)) != c.want {
			t.Errorf("connect to %d: SO_ERROR %d (call %d), want %d", c.port, le64.Uint32(vb), r, c.want)
		}
		name, _ := s.at(0x200, 16)
		lenp, lb := s.at(0x300, 4)
		le64.PutUint32(lb, 16)
		_, r := call(sysGetpeername, uint64(fd), name, lenp)
		if (c.want == 0) != (r == 0) {
			t.Errorf("connect to %d: getpeername returned %d", c.port, r)
		}
	}
}

func TestReadWouldBlockThenDataThenHalfClose(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	_, cl, srv := s.connection(80, sockNonblock)
	_, ep := call(sysEpollCreate1, 0)
	s.watch(t, ep, srv, epollIn|epollOut|epollRdHup|epollET)
	s.wait(t, ep, 8) // the write edge

	buf, bb := s.at(0x1000, 64)
	if r := s.mustDo(sysRead, uint64(srv), buf, 64); r != -eAGAIN {
		t.Fatalf("read with nothing received returned %d, want -EAGAIN", r)
	}
	msg, mb := s.at(0x2000, 5)
	copy(mb, "hello")
	if r := s.mustDo(sysWrite, uint64(cl), msg, 5); r != 5 {
		t.Fatalf("write returned %d", r)
	}
	if got := s.wait(t, ep, 8); len(got) != 1 {
		t.Fatalf("data arriving reported %v, want one edge", got)
	}
	if r := s.mustDo(sysRead, uint64(srv), buf, 64); r != 5 || string(bb[:5]) != "hello" {
		t.Fatalf("read returned %d %q", r, bb[:max(r, 0)])
	}
	// The client shuts its sending side: the server reads end of stream
	// and can still send.
	if r := s.mustDo(sysShutdown, uint64(cl), syscall.SHUT_WR); r != 0 {
		t.Fatalf("shutdown returned %d", r)
	}
	if got := s.wait(t, ep, 8); len(got) != 1 {
		t.Errorf("the peer's shutdown reported %v, want an edge", got)
	}
	if r := s.mustDo(sysRead, uint64(srv), buf, 64); r != 0 {
		t.Errorf("read after the peer's shutdown returned %d, want 0 (end of stream)", r)
	}
	if r := s.mustDo(sysWrite, uint64(srv), msg, 5); r != 5 {
		t.Errorf("write on a half-closed connection returned %d", r)
	}
	if r := s.mustDo(sysRead, uint64(cl), buf, 64); r != 5 {
		t.Errorf("the client read %d bytes of the server's answer", r)
	}
	if r := s.mustDo(sysShutdown, uint64(cl), 3); r != -eINVAL {
		t.Errorf("shutdown how=3 returned %d", r)
	}
	if r := s.mustDo(sysRead, 1, buf, 0); r != 0 {
		t.Errorf("read of the console returned %d", r)
	}
	if r := s.mustDo(sysAccept4, 1, 0, 0, 0); r != -eNOTSOCK {
		t.Errorf("accept4 on the console returned %d, want -ENOTSOCK", r)
	}
}

func TestBlockingReadWaitsForDataAndGoesAgain(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	_, cl, srv := s.connection(80, 0) // srv blocking
	buf, bb := s.at(0x1000, 64)
	if r, blocked := s.do(sysRead, uint64(srv), buf, 64); !blocked {
		t.Fatalf("a blocking read with nothing received did not block: %d", r)
	}
	if threads[s.app].wait != waitSockReady {
		t.Fatalf("the reader waits on %d, want waitSockReady", threads[s.app].wait)
	}
	// A signal does not interrupt it (Go's handlers are SA_RESTART).
	writer := newThread()
	on(writer)
	call(sysTgkill, 1, uint64(threads[s.app].tid), sigURG)
	if threads[s.app].state != threadBlocked {
		t.Fatal("a signal woke the blocked reader")
	}
	msg, mb := s.at(0x2000, 3)
	copy(mb, "abc")
	call(sysWrite, uint64(cl), msg, 3)
	if threads[s.app].state != threadBlocked || threads[writer].state != threadBlocked {
		t.Fatalf("states: reader %d, writer %d; want both waiting for the serve loop", threads[s.app].state, threads[writer].state)
	}
	s.serveAll()
	if r := int64(threads[s.app].frame.RAX); threads[s.app].state != threadRunnable || r != 3 || string(bb[:3]) != "abc" {
		t.Errorf("the blocked read returned %d %q (state %d), want 3 \"abc\"", r, bb[:3], threads[s.app].state)
	}
	if r := int64(threads[writer].frame.RAX); r != 3 {
		t.Errorf("the write returned %d", r)
	}
}

func TestStaleReadinessAndAnswersAreDroppedAndCounted(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	ln := s.listener(80)
	f := fileFor(ln)
	h := sockHandle(ln, f)
	ver := f.sockVer
	sysSocketReady(h, uint64(epollIn)|uint64(ver+1)<<32)
	if f.sockReady&epollIn == 0 {
		t.Fatal("a newer event did not apply")
	}
	sysSocketReady(h, uint64(epollOut)|uint64(ver)<<32) // older
	if f.sockReady&epollOut != 0 || stats.SocketStaleEvents != 1 {
		t.Errorf("an older report applied (ready %#x, stale %d)", f.sockReady, stats.SocketStaleEvents)
	}
	sysSocketReady(h+1<<32, uint64(epollOut)|uint64(ver+5)<<32) // another generation
	if f.sockReady&epollOut != 0 || stats.SocketStaleEvents != 2 {
		t.Errorf("a report for an earlier socket on the same fd applied")
	}
	on(s.server)
	call(SysSocketServe, uint64(s.app)|99<<16, 0, 0, 0, s.reqVA())
	if stats.SocketStaleAnswers != 1 {
		t.Errorf("an answer for no waiting call was not counted")
	}
}

func TestCallsPastTheQueueLimitGetEAGAINAndAnEventLater(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	_, cl, srv := s.connection(80, sockNonblock)
	_, ep := call(sysEpollCreate1, 0)
	s.watch(t, ep, srv, epollIn|epollOut|epollRdHup|epollET)
	s.wait(t, ep, 8)

	// maxPendingCalls threads wait on the serve loop...
	buf, _ := s.at(0x1000, 64)
	var waiting []int32
	for i := 0; i < maxPendingCalls; i++ {
		w := newThread()
		on(w)
		call(sysRead, uint64(cl), buf, 64)
		if threads[w].state != threadBlocked {
			t.Fatalf("call %d did not wait for the serve loop", i)
		}
		waiting = append(waiting, w)
	}
	// ...so the next non-blocking read fails at once, holding no thread,
	// although the socket is readable as far as the kernel knows (else
	// the kernel would answer EAGAIN alone, see wouldBlock).
	fileFor(srv).sockReady = epollIn | epollOut
	on(s.app)
	if _, r := call(sysRead, uint64(srv), buf, 64); r != -eAGAIN || threads[s.app].state != threadRunning {
		t.Fatalf("a read past the queue limit returned %d (state %d), want -EAGAIN at once", r, threads[s.app].state)
	}
	if stats.SocketCallsDeferred != 1 {
		t.Errorf("SocketCallsDeferred = %d", stats.SocketCallsDeferred)
	}
	// Data for it arrives; once the queue drains its socket is woken
	// even though its readiness did not change since.
	s.st.listeners[80].queue = nil
	fileFor(srv).sockReady = epollIn | epollOut
	s.wait(t, ep, 8)
	s.serveAll()
	for _, w := range waiting {
		if threads[w].state == threadBlocked {
			t.Errorf("thread %d still waits", w)
		}
	}
	if got := s.wait(t, ep, 8); len(got) != 1 || got[0] != srv {
		t.Errorf("after the queue drained epoll reported %v, want the refused socket %d", got, srv)
	}
}

func TestCloseDoesNotWaitForTheServeLoop(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	on(s.app)
	_, q := call(SysSocketCloseQueue)
	_, ep := call(sysEpollCreate1, 0)
	s.watch(t, ep, q, epollIn|epollET)
	ln := s.listener(80)
	h := sockHandle(ln, fileFor(ln))
	on(s.app)
	if _, r := call(sysClose, uint64(ln)); r != 0 || threads[s.app].state != threadRunning {
		t.Fatalf("close of a served socket: %d, state %d; want 0 at once", r, threads[s.app].state)
	}
	if fileFor(ln) != nil {
		t.Errorf("the descriptor is still open")
	}
	if got := s.wait(t, ep, 8); len(got) != 1 || got[0] != q {
		t.Fatalf("the close queue reported %v", got)
	}
	buf, b := s.at(0x3000, 64)
	if _, r := call(sysRead, uint64(q), buf, 64); r != 8 || le64.Uint64(b) != h {
		t.Errorf("reading the close queue: %d, handle %#x; want 8, %#x", r, le64.Uint64(b), h)
	}
	if _, r := call(sysRead, uint64(q), buf, 64); r != -eAGAIN {
		t.Errorf("reading the empty close queue: %d, want -EAGAIN", r)
	}
}

// A call sees the closes made before it, although they went to the close
// queue and no closer goroutine read them: the serve loop performs them
// first. A listener closed and then dialed refuses the connection, as on
// Linux, instead of completing it on its way out.
func TestACallFollowsTheClosesBeforeIt(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	on(s.app)
	_, q := call(SysSocketCloseQueue)
	sockets.closeFD = int(q)
	readCloses = func(fd int, b []byte) (int, error) {
		va, kb := s.at(0x6000, len(b))
		if _, r := call(sysRead, uint64(fd), va, uint64(len(b))); r < 0 {
			return 0, syscall.Errno(-r)
		} else {
			return copy(b, kb[:r]), nil
		}
	}
	t.Cleanup(func() { readCloses = func(fd int, b []byte) (int, error) { return syscall.Read(fd, b) } })

	ln := s.listener(80)
	l := s.st.listeners[80]
	on(s.app)
	if _, r := call(sysClose, uint64(ln)); r != 0 || threads[s.app].state != threadRunning {
		t.Fatalf("close: %d, state %d; want 0 at once", r, threads[s.app].state)
	}
	if l.closed {
		t.Fatal("the listener was closed before any call")
	}
	cl := s.mustDo(sysSocket, afInet, sockStream|sockNonblock, 0)
	if r := s.mustDo(sysConnect, uint64(cl), s.addr(0x100, 80), 16); r != -eINPROGRESS {
		t.Fatalf("connect returned %d", r)
	}
	if s.req.Closing != 1 || !l.closed {
		t.Errorf("the connect was handed over with Closing %d, listener closed %v; want 1, true", s.req.Closing, l.closed)
	}
	c := s.st.pending[0]
	s.st.complete()
	if c.err != syscall.ECONNREFUSED {
		t.Errorf("the connect to the closed listener's port ended with %v, want ECONNREFUSED", c.err)
	}
}

// A non-blocking call that can only get EAGAIN, by the readiness the
// kernel holds, is answered by the kernel alone: the last read of a read
// loop, an accept with nothing queued. Once an event brings what it
// needs, the call goes to the serve loop again; a socket whose state
// might answer otherwise (not yet connected) always goes.
func TestACallThatCanOnlyWaitIsAnsweredByTheKernel(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	ln := s.listener(80)
	before := stats.SocketCalls
	if r := s.mustDo(sysAccept4, uint64(ln), 0, 0, sockNonblock); r != -eAGAIN || stats.SocketCalls != before {
		t.Errorf("accept with nothing queued: %d, %d calls to the serve loop; want -EAGAIN, none", r, stats.SocketCalls-before)
	}
	cl := s.mustDo(sysSocket, afInet, sockStream|sockNonblock, 0)
	s.mustDo(sysConnect, uint64(cl), s.addr(0x100, 80), 16)
	buf, b := s.at(0x1000, 64)
	before = stats.SocketCalls
	if r := s.mustDo(sysRead, uint64(cl), buf, 64); r != -eAGAIN || stats.SocketCalls != before+1 {
		t.Errorf("read while connecting: %d, %d calls to the serve loop; want -EAGAIN from it", r, stats.SocketCalls-before)
	}
	s.st.complete()
	srv := s.mustDo(sysAccept4, uint64(ln), 0, 0, sockNonblock)
	if srv < 0 {
		t.Fatalf("accept of a queued connection: %d", srv)
	}
	before = stats.SocketCalls
	if r := s.mustDo(sysRead, uint64(srv), buf, 64); r != -eAGAIN || stats.SocketCalls != before || stats.SocketCallsWouldBlock != 2 {
		t.Errorf("read with nothing sent: %d, %d calls to the serve loop, %d answered alone; want -EAGAIN, none, 2",
			r, stats.SocketCalls-before, stats.SocketCallsWouldBlock)
	}
	msg, mb := s.at(0x2000, 5)
	copy(mb, "hello")
	if r := s.mustDo(sysWrite, uint64(cl), msg, 5); r != 5 {
		t.Fatalf("write: %d", r)
	}
	if r := s.mustDo(sysRead, uint64(srv), buf, 64); r != 5 || string(b[:5]) != "hello" {
		t.Errorf("read after the data's event: %d %q", r, b[:max(r, 0)])
	}
}

// While the CPU profiler is on and the serve thread has no profiling
// timer of its own, the calls handed to the serve loop ask it to pass
// through Go's scheduler, where Go gives a thread its timer; once it has
// one they no longer do. (Without it the serve loop, which never
// schedules, was missing from every profile: 25% of a server's CPU.)
func TestTheServeLoopIsAskedToScheduleUntilItIsProfiled(t *testing.T) {
	s := setupSockets(t)
	sysSocketProvide(1)
	ln := s.listener(80)
	accept := func() uint64 {
		t.Helper()
		if r := s.mustDo(sysAccept4, uint64(ln), 0, 0, sockNonblock); r != -eAGAIN {
			t.Fatalf("accept: %d", r)
		}
		return s.req.Resched
	}
	fileFor(ln).sockReady = epollIn // so that the accept goes to the serve loop
	if r := accept(); r != 0 {
		t.Errorf("Resched %d without profiling", r)
	}
	on(s.app)
	if _, r := call(sysSetitimer, itimerProf, s.itimerval(10e6, 10e6), 0); r != 0 {
		t.Fatalf("setitimer: %d", r)
	}
	fileFor(ln).sockReady = epollIn
	if r := accept(); r != 1 {
		t.Errorf("Resched %d while profiling, with no timer on the serve thread", r)
	}
	on(s.app)
	s.timerCreateProf(t, s.server, 0)
	fileFor(ln).sockReady = epollIn
	if r := accept(); r != 0 {
		t.Errorf("Resched %d once the serve thread has its timer", r)
	}
}
