package kernel

import "unsafe"

// Sockets. The kernel runs with interrupts off on its own stack and may
// not run Go code that allocates, so it cannot call the network stack
// (gVisor, in package network). It keeps the socket's descriptor and its
// readiness, checks the program's pointers, and hands each call to a
// goroutine that owns the stack (the serve loop, sockserve.go), parking
// the calling thread until the answer. Readiness flows the other way: the
// stack's callbacks report events with SysSocketReady, which feeds epoll
// like any other file (fdReady). The design, and why, is in doc.go
// ("Sockets").
//
// A call travels as follows. The caller's slot (sockCalls, one per
// thread) records the operation and its arguments and joins the queue;
// the caller blocks (waitSockCall). A serve thread blocked in
// SysSocketServe (waitSockServe) is given the head of the queue in its
// request buffer and woken to run next. It answers with its next
// SysSocketServe, which wakes the caller with the result, updates the
// readiness and addresses the answer carries, and takes the next queued
// call at once (the serve thread keeps the P and serves on) or waits for
// one. The woken caller runs next when the serve thread waits: with one
// P (GOMAXPROCS=1) each takes the P from the other, parked in a system
// call, without waiting for sysmon.

// Socket system calls (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	sysReadv       = 19
	sysWritev      = 20
	sysSocket      = 41
	sysConnect     = 42
	sysAccept      = 43
	sysSendto      = 44
	sysRecvfrom    = 45
	sysSendmsg     = 46
	sysRecvmsg     = 47
	sysShutdown    = 48
	sysBind        = 49
	sysListen      = 50
	sysGetsockname = 51
	sysGetpeername = 52
	sysSocketpair  = 53
	sysSetsockopt  = 54
	sysGetsockopt  = 55
	sysAccept4     = 288
)

// Socket constants (include/linux/socket.h, net.h).
const (
	afInet       = 2
	afInet6      = 10
	ipprotoTCP   = 6
	ipprotoUDP   = 17
	sockStream   = 1
	sockDgram    = 2
	sockNonblock = 0x800
	sockCloexec  = 0x80000
	sockTypeMask = 0xf
	msgDontwait  = 0x40
	uioMaxIov    = 1024
	maxSockaddr  = 128 // sizeof(struct sockaddr_storage)
	maxOptLen    = 4096
	maxRW        = 1<<31 - 4096 // Linux's MAX_RW_COUNT
	msghdrSize   = 56
	iovecSize    = 16
)

// Operations the serve loop performs (sockRequest.Op).
const (
	opBind = iota + 1
	opListen
	opAccept
	opConnect
	opConnectResult // a blocking connect's outcome: SO_ERROR
	opRecvFrom      // read, recvfrom
	opSendTo        // write, sendto
	opRecvMsg
	opSendMsg
	opReadv
	opWritev
	opShutdown
	opSetOpt
	opGetOpt
	opClose
)

// sockRequest is a call as the serve loop receives it in its buffer.
type sockRequest struct {
	Tag     uint64    // identifies the caller's slot and call, for the answer
	Op      uint64    // opBind...
	Sock    uint64    // the socket's handle (sockHandle)
	NewSock uint64    // opAccept: the handle of the descriptor being opened
	Args    [6]uint64 // the system call's arguments as the program passed them
	Queued  uint64    // calls still waiting for a serve thread
	// Closing counts the handles in the close queue when the call was
	// handed over: the serve loop closes them before it serves the call,
	// so that the call sees every close made before it (a port that was
	// listened on is free again, as after close(2) on Linux).
	Closing uint64
	// Resched asks the serve loop to pass through Go's scheduler once:
	// the CPU profiler is on (ITIMER_PROF is armed) and the serve thread
	// has no timer of its own. Go starts a thread's profiling timer, and
	// records its samples, only when the thread next schedules a
	// goroutine, which the serve loop, always running, never does.
	Resched uint64
	// Create is the socket's domain, type and protocol (bits 0-15,
	// 16-31, 32-47): socket(2) is answered by the kernel alone (see
	// sysSocketCreate), so the serve loop makes the stack's socket on
	// its first call.
	Create uint64
	// With its answer the serve loop leaves here the local and peer
	// addresses of the socket NameSock (0: none; a length 0 when there is
	// none yet), which getsockname and getpeername return from the
	// kernel (see sysSockName).
	NameSock          uint64
	LocalLen, PeerLen uint64
	Local, Peer       [sockNameSize]byte
}

// sockNameSize is room for a struct sockaddr_in6.
const sockNameSize = 28

// sockCall is a thread's slot: the call it waits on.
type sockCall struct {
	req     sockRequest
	seq     uint32 // counts the thread's calls; the answer's tag must match
	next    int32  // queue link (thread index), -1 at the tail
	fd      int32  // the descriptor called on (-1 for a close: already free)
	newFD   int32  // opAccept: the descriptor reserved for the result, else -1
	waitFor uint32 // a blocking call waiting for readiness: the events it needs
	queued  bool
	// dontwait: the call must not block (a non-blocking socket, or
	// MSG_DONTWAIT); otherwise the kernel waits for readiness and
	// retries what would block.
	dontwait bool
}

var (
	sockCalls            [maxThreads]sockCall
	sockQHead, sockQTail int32 = -1, -1
	// sockProvided is set once a program announced a serve loop
	// (SysSocketProvide): socket calls then wait for it rather than fail.
	sockProvided bool
	// sockGen numbers the sockets opened, so that a late event for a
	// closed socket never reaches the one reusing its descriptor.
	sockGen uint32
	// sockPending counts the calls queued or being served.
	sockPending int
	// sockDeferred holds the sockets whose call was refused with EAGAIN
	// because too many calls were pending (see submit); they are woken
	// when the queue drains. deferHead and deferLen locate them.
	sockDeferred        [maxDeferred]uint64
	deferHead, deferLen int
)

// Calls waiting for the serve loop each hold a thread, and with one P
// the Go runtime makes a new thread each time sysmon takes the P from
// one of them: a burst of calls would make a thread per call (2000
// connections answered at once exhausted the 64 threads). So when
// maxPendingCalls calls are pending, a non-blocking read, write or
// accept fails with EAGAIN at once, as if the socket were not ready, and
// its socket is woken (an epoll event) once the queue has drained to
// half: Go's netpoller then tries again. Up to maxDeferred sockets wait
// so; past that, calls queue.
const (
	maxPendingCalls = 8
	maxDeferred     = 1024
)

// sockHandle names the socket on descriptor fd for the serve loop.
func sockHandle(fd int64, f *file) uint64 { return uint64(f.sockGen)<<32 | uint64(fd) }

// sockFile returns the socket behind fd and the errno for a descriptor
// that is not one.
func sockFile(fd int64) (*file, int64) {
	f := fileFor(fd)
	if f == nil || f.sockOpening {
		return nil, -eBADF
	}
	if f.kind != fileSocket {
		return nil, -eNOTSOCK
	}
	return f, 0
}

// submit queues the current thread's call and blocks it until the
// answer. fd is the socket called on (or -1), newFD a descriptor reserved
// for the call's result (or -1).
func submit(op uint64, fd, newFD int64, args [6]uint64, dontwait bool) int64 {
	if dontwait && fd >= 0 && wouldBlock(op, fileSlot(fd)) {
		stats.SocketCallsWouldBlock++
		if newFD >= 0 {
			*fileSlot(newFD) = file{}
			freeFD(newFD)
		}
		return -eAGAIN
	}
	if dontwait && sockPending >= maxPendingCalls && deferLen < maxDeferred && deferrable(op) {
		f := fileSlot(fd)
		sockDeferred[(deferHead+deferLen)%maxDeferred] = sockHandle(fd, f)
		deferLen++
		stats.SocketCallsDeferred++
		if newFD >= 0 {
			*fileSlot(newFD) = file{}
			freeFD(newFD)
		}
		return -eAGAIN
	}
	sockPending++
	c := &sockCalls[current]
	c.seq++
	c.fd, c.newFD, c.waitFor, c.dontwait = int32(fd), int32(newFD), 0, dontwait
	c.req = sockRequest{Op: op, Args: args}
	c.req.Tag = uint64(current) | uint64(c.seq)<<16
	if f := fileSlot(fd); fd >= 0 && f != nil {
		c.req.Sock = sockHandle(fd, f)
		c.req.Create = uint64(f.sockDomain) | uint64(f.sockType)<<16 | uint64(f.sockProto)<<32
	}
	if f := fileSlot(newFD); newFD >= 0 && f != nil {
		c.req.NewSock = sockHandle(newFD, f)
	}
	block(waitSockCall, 0)
	queueCall(current)
	stats.SocketCalls++
	return 0
}

// wouldBlock reports whether the non-blocking call op on socket f can
// only get EAGAIN, from the readiness the kernel holds: what the call
// needs is not there and no error or hang-up is pending. The kernel then
// answers alone, saving the hand-off to the serve loop that the last
// call of every read or accept loop in Go's net would make. The mask is
// never behind an event the stack has reported (see sockReadiness), and
// one that comes later is the edge Go's netpoller waits for after EAGAIN.
// Only sockets in the state the answer is EAGAIN in qualify: a connected
// stream socket (its peer known), a datagram socket reading, a listener.
func wouldBlock(op uint64, f *file) bool {
	if f == nil || f.kind != fileSocket || !f.sockServed || f.sockReady&(epollErr|epollHup) != 0 {
		return false
	}
	connected := f.sockType == sockStream && f.sockPeerLen > 0
	switch op {
	case opRecvFrom, opRecvMsg, opReadv:
		return (connected || f.sockType == sockDgram) && f.sockReady&(epollIn|epollRdHup) == 0
	case opSendTo, opSendMsg, opWritev:
		return connected && f.sockReady&epollOut == 0
	case opAccept:
		return f.sockListening && f.sockReady&epollIn == 0
	}
	return false
}

// deferrable reports whether op may fail with EAGAIN when the serve loop
// is behind: the calls a non-blocking socket answers so when not ready.
func deferrable(op uint64) bool {
	switch op {
	case opRecvFrom, opSendTo, opRecvMsg, opSendMsg, opReadv, opWritev, opAccept:
		return true
	}
	return false
}

// wakeDeferred wakes the sockets refused while the queue was long, once
// it is short again.
func wakeDeferred() {
	if deferLen == 0 || sockPending > maxPendingCalls/2 {
		return
	}
	for deferLen > 0 {
		h := sockDeferred[deferHead]
		deferHead, deferLen = (deferHead+1)%maxDeferred, deferLen-1
		fd := int64(uint32(h))
		if f := fileFor(fd); f != nil && f.kind == fileSocket && sockHandle(fd, f) == h {
			sockEvent(fd, f)
		}
	}
}

func queueCall(i int32) {
	c := &sockCalls[i]
	c.queued, c.next = true, -1
	if sockQTail < 0 {
		sockQHead = i
	} else {
		sockCalls[sockQTail].next = i
	}
	sockQTail = i
	dispatchCalls()
}

// dispatchCalls hands queued calls to the serve threads waiting for one.
func dispatchCalls() {
	for s := int32(1); s < threadsTop && sockQHead >= 0; s++ {
		t := &threads[s]
		if t.state != threadBlocked || t.wait != waitSockServe {
			continue
		}
		popCall(s, t.epEvents)
		// The serve thread runs next, so that it takes the P from the
		// caller (parked in this call) before another thread does.
		wakeFirst(s, 0)
	}
}

// takeCall gives the current (serve) thread the next queued call at once,
// without blocking: it keeps the P and serves on.
func takeCall(buf uint64) bool {
	if sockQHead < 0 {
		return false
	}
	popCall(current, buf)
	return true
}

// popCall takes the call at the head of the queue into the buffer at buf
// of serve thread s, with the counts and flags it reads there.
func popCall(s int32, buf uint64) {
	c := &sockCalls[sockQHead]
	sockQHead = c.next
	if sockQHead < 0 {
		sockQTail = -1
	}
	c.queued = false
	c.req.Queued = 0
	for j := sockQHead; j >= 0; j = sockCalls[j].next {
		c.req.Queued++
	}
	c.req.Closing = uint64(closeLen)
	c.req.Resched = 0
	if itimer.next != 0 && !hasThreadTimer(s) {
		c.req.Resched = 1
	}
	*(*sockRequest)(virtPtr(buf)) = c.req
}

// sysSocketServe is a serve thread's call: it answers the call tagged tag
// (when tag is not 0) with result, the readiness of the socket called on
// (ready) and of the one it opened (readyNew), then waits for the next
// call, which it receives in the sockRequest at buf.
func sysSocketServe(tag uint64, result int64, ready, readyNew, buf uint64) int64 {
	if !userRange(buf, uint64(unsafe.Sizeof(sockRequest{})), true) {
		return -eFAULT
	}
	sockProvided = true
	woke := tag != 0 && answer(tag, result, ready, readyNew, (*sockRequest)(virtPtr(buf)))
	if takeCall(buf) {
		return 0 // more calls: serve on, holding the P
	}
	if !woke {
		stats.SocketServeIdle++
	}
	t := &threads[current]
	t.epEvents = buf
	block(waitSockServe, 0)
	return 0
}

// answer completes the call tagged tag; names is the serve loop's buffer,
// with the addresses it reports. It reports whether it woke the caller.
func answer(tag uint64, result int64, ready, readyNew uint64, names *sockRequest) bool {
	i := int32(tag & 0xffff)
	if i < 1 || i >= maxThreads {
		stats.SocketStaleAnswers++
		return false
	}
	t, c := &threads[i], &sockCalls[i]
	if t.state != threadBlocked || t.wait != waitSockCall || c.queued || c.seq != uint32(tag>>16) {
		stats.SocketStaleAnswers++
		return false
	}
	sockPending--
	defer wakeDeferred()
	op := c.req.Op
	if c.fd >= 0 {
		if f := fileFor(int64(c.fd)); f != nil && f.kind == fileSocket && sockHandle(int64(c.fd), f) == c.req.Sock {
			f.sockServed = true
			f.sockListening = f.sockListening || op == opListen && result == 0
		}
		sockReadiness(c.req.Sock, ready, false, result == -eAGAIN || result == -eINPROGRESS)
	}
	if names.NameSock != 0 {
		setSockNames(names)
	}
	if f := fileFor(int64(c.fd)); f != nil && f.kind == fileSocket && !c.dontwait {
		// A blocking call: what would block waits for the events it
		// needs and then goes again; a connect in progress waits for
		// the outcome.
		need := uint32(0)
		switch {
		case result == -eAGAIN && (op == opRecvFrom || op == opRecvMsg || op == opReadv || op == opAccept):
			need = epollIn
		case result == -eAGAIN && (op == opSendTo || op == opSendMsg || op == opWritev):
			need = epollOut
		case result == -eINPROGRESS && (op == opConnect || op == opConnectResult):
			need = epollOut
			c.req.Op = opConnectResult
		}
		if need != 0 {
			c.waitFor = need | epollErr | epollHup
			t.wait, t.waitFD = waitSockReady, c.fd
			f.readWaiting = true
			if f.sockReady&c.waitFor != 0 {
				retryBlocked(int64(c.fd), f)
			}
			return false
		}
	}
	if c.newFD >= 0 {
		nf := fileSlot(int64(c.newFD))
		if result >= 0 {
			nf.sockOpening, nf.sockServed = false, true
			if lf := fileSlot(int64(c.fd)); lf != nil {
				nf.sockDomain, nf.sockType = lf.sockDomain, lf.sockType // the listener's
			}
			result = int64(c.newFD)
			sockReadiness(c.req.NewSock, readyNew, false, false)
		} else {
			*nf = file{}
			freeFD(int64(c.newFD))
		}
	}
	// The caller runs next when the serve thread waits: it takes the P
	// back from it (see doc.go).
	wakeFirst(i, result)
	return true
}

// setSockNames records the addresses the serve loop reports.
func setSockNames(r *sockRequest) {
	fd := int64(uint32(r.NameSock))
	f := fileSlot(fd)
	if f == nil || f.kind != fileSocket || f.sockGen != uint32(r.NameSock>>32) {
		return
	}
	f.sockLocal, f.sockLocalLen = r.Local, uint8(min(r.LocalLen, sockNameSize))
	f.sockPeer, f.sockPeerLen = r.Peer, uint8(min(r.PeerLen, sockNameSize))
}

// sockReadiness applies a readiness report: mask in the low 32 bits of
// word, the serve loop's version of the socket's state in the high 32.
// Reports older than the last one applied are stale: the version is
// taken before the state is read, so the newest version reflects every
// event before it. An event (events) adds its bits; an answer's report
// replaces the mask.
//
// Go's netpoller is edge-triggered: after EAGAIN it waits for an event,
// so an event must never be lost to the mask already holding its bit (a
// mask another call left set) or to its report being older than an
// answer's. So every event report wakes the socket's waiters, applied
// or not, as every wake-up callback does on Linux; an answer wakes them
// when it sets new bits, or when its call would block while the state it
// read after the call is ready (an event came between the two).
func sockReadiness(handle, word uint64, events, wouldBlock bool) {
	fd := int64(uint32(handle))
	f := fileFor(fd)
	if f == nil || f.kind != fileSocket || f.sockGen != uint32(handle>>32) {
		stats.SocketStaleEvents++
		return
	}
	mask, ver := uint32(word), uint32(word>>32)
	if int32(ver-f.sockVer) <= 0 {
		stats.SocketStaleEvents++
		if events && mask != 0 {
			sockEvent(fd, f)
		}
		return
	}
	next := mask
	if events {
		next |= f.sockReady
	}
	rising := next &^ f.sockReady
	f.sockReady, f.sockVer = next, ver
	if rising != 0 || (events || wouldBlock) && mask != 0 {
		sockEvent(fd, f)
	}
}

// sockEvent wakes what waits on socket fd: blocking calls, epoll.
func sockEvent(fd int64, f *file) {
	retryBlocked(fd, f)
	fdReady(fd)
}

// retryBlocked queues again the blocking calls on fd whose events came.
func retryBlocked(fd int64, f *file) {
	if !f.readWaiting {
		return
	}
	f.readWaiting = false
	for i := int32(1); i < threadsTop; i++ {
		t := &threads[i]
		if t.state != threadBlocked || t.wait != waitSockReady || int64(t.waitFD) != fd {
			continue
		}
		c := &sockCalls[i]
		if f.sockReady&c.waitFor == 0 {
			f.readWaiting = true
			continue
		}
		t.wait = waitSockCall
		sockPending++
		queueCall(i)
	}
}

// sysSocketProvide records that a serve loop is coming (on != 0) or that
// none will (on == 0: socket(2) fails with EAFNOSUPPORT again).
func sysSocketProvide(on uint64) int64 {
	sockProvided = on != 0
	return 0
}

// sysSocketReady is the stack's event report for a socket (see
// sockReadiness).
func sysSocketReady(handle, word uint64) int64 {
	sockReadiness(handle, word, true, false)
	return 0
}

// sysSocketCreate is socket(2). Go's syscall package makes it (and
// getsockname, getpeername) as a raw system call, without telling the
// scheduler: the thread keeps its P, so with GOMAXPROCS=1 no goroutine
// could answer while it waits. The kernel answers it alone: it opens the
// descriptor and records what the serve loop will make on the socket's
// first call (sockRequest.Create).
func sysSocketCreate(domain, typ, protocol uint64) int64 {
	if domain != afInet && domain != afInet6 {
		return -eAFNOSUPPORT
	}
	if typ&^(sockTypeMask|sockNonblock|sockCloexec) != 0 {
		return -eINVAL
	}
	t := typ & sockTypeMask
	switch {
	case t != sockStream && t != sockDgram:
		return -ePROTONOSUPPORT
	case protocol != 0 && !(t == sockStream && protocol == ipprotoTCP) && !(t == sockDgram && protocol == ipprotoUDP):
		return -ePROTONOSUPPORT
	}
	if !sockProvided {
		stats.SocketNoProvider++
		return -eAFNOSUPPORT
	}
	fd := allocFD(fileSocket)
	if fd < 0 {
		return fd
	}
	f := fileSlot(fd)
	sockGen++
	f.sockGen, f.nonblock = sockGen, typ&sockNonblock != 0
	f.sockDomain, f.sockType, f.sockProto = uint8(domain), uint8(t), uint8(protocol)
	return fd
}

// sysSockName is getsockname(2) and getpeername(2), answered from the
// addresses the serve loop last reported (see sysSocketCreate for why):
// an unbound socket's local address is the wildcard, a socket with no
// peer gets ENOTCONN.
func sysSockName(fd int64, addr, lenp uint64, peer bool) int64 {
	f, e := sockFile(fd)
	if f == nil {
		return e
	}
	if addr == 0 || lenp == 0 {
		return -eFAULT
	}
	if r := sockaddrOut(addr, lenp); r != 0 {
		return r
	}
	var name [sockNameSize]byte
	n := int(f.sockLocalLen)
	if peer {
		if f.sockPeerLen == 0 {
			return -eNOTCONN
		}
		name, n = f.sockPeer, int(f.sockPeerLen)
	} else if n == 0 {
		// The wildcard address of the socket's family, port 0.
		n = 16
		if f.sockDomain == afInet6 {
			n = 28
		}
		le.PutUint16(name[:], uint16(f.sockDomain))
	} else {
		name = f.sockLocal
	}
	l := userBytes(lenp, 4)
	copy(userBytes(addr, int(le.Uint32(l))), name[:n])
	le.PutUint32(l, uint32(n))
	return 0
}

// openSocketFD reserves a descriptor for a socket being accepted.
func openSocketFD(nonblock bool) int64 {
	fd := allocFD(fileSocket)
	if fd < 0 {
		return fd
	}
	f := fileSlot(fd)
	sockGen++
	f.sockGen, f.sockOpening, f.nonblock = sockGen, true, nonblock
	return fd
}

// sockaddrIn checks an address the program passes in.
func sockaddrIn(addr, addrlen uint64) int64 {
	if addrlen > maxSockaddr || addrlen < 2 {
		return -eINVAL
	}
	if !userRange(addr, addrlen, false) {
		return -eFAULT
	}
	return 0
}

// sockaddrOut checks a buffer for an address the call returns: addr with
// its length at lenp (value-result), both optional together.
func sockaddrOut(addr, lenp uint64) int64 {
	if addr == 0 || lenp == 0 {
		return 0
	}
	if !userRange(lenp, 4, true) {
		return -eFAULT
	}
	n := int32(le.Uint32(userBytes(lenp, 4)))
	if n < 0 {
		return -eINVAL
	}
	if !userRange(addr, uint64(n), true) {
		return -eFAULT
	}
	return 0
}

// iovecs checks cnt iovecs at iov, each readable (or writable, for
// receiving), and clamps nothing: the serve loop stops at maxRW.
func iovecs(iov, cnt uint64, write bool) int64 {
	if cnt > uioMaxIov {
		return -eINVAL
	}
	if !userRange(iov, cnt*iovecSize, false) {
		return -eFAULT
	}
	b := userBytes(iov, int(cnt*iovecSize))
	for i := uint64(0); i < cnt; i++ {
		base, n := le.Uint64(b[i*iovecSize:]), le.Uint64(b[i*iovecSize+8:])
		if int64(n) < 0 {
			return -eINVAL
		}
		if !userRange(base, n, write) {
			return -eFAULT
		}
	}
	return 0
}

// msghdr checks a struct msghdr and what it points to.
func msghdr(msg uint64, recv bool) int64 {
	if !userRange(msg, msghdrSize, recv) {
		return -eFAULT
	}
	b := userBytes(msg, msghdrSize)
	name, namelen := le.Uint64(b), uint64(le.Uint32(b[8:]))
	iov, iovlen := le.Uint64(b[16:]), le.Uint64(b[24:])
	if name != 0 {
		if namelen > maxSockaddr && !recv {
			return -eINVAL
		}
		if !userRange(name, namelen, recv) {
			return -eFAULT
		}
	}
	return iovecs(iov, iovlen, recv)
}

// sysSockCall runs socket system call nr on descriptor a[0].
func sysSockCall(nr uint64, a [6]uint64) int64 {
	fd := int64(a[0])
	f, e := sockFile(fd)
	if f == nil {
		return e
	}
	var op uint64
	var r int64
	switch nr {
	case sysBind, sysConnect:
		op = opBind
		if nr == sysConnect {
			op = opConnect
		}
		r = sockaddrIn(a[1], a[2])
	case sysListen:
		op = opListen
	case sysAccept, sysAccept4:
		if a[3]&^(sockNonblock|sockCloexec) != 0 {
			return -eINVAL
		}
		if r = sockaddrOut(a[1], a[2]); r != 0 {
			return r
		}
		nfd := openSocketFD(a[3]&sockNonblock != 0)
		if nfd < 0 {
			return nfd
		}
		return submit(opAccept, fd, nfd, a, f.nonblock)
	case sysRecvfrom, sysSendto:
		op = opRecvFrom
		if nr == sysSendto {
			op = opSendTo
		}
		a[2] = min(a[2], maxRW)
		if !userRange(a[1], a[2], nr == sysRecvfrom) {
			return -eFAULT
		}
		if nr == sysRecvfrom {
			r = sockaddrOut(a[4], a[5])
		} else if a[4] != 0 {
			r = sockaddrIn(a[4], a[5])
		}
	case sysRecvmsg, sysSendmsg:
		op = opRecvMsg
		if nr == sysSendmsg {
			op = opSendMsg
		}
		r = msghdr(a[1], nr == sysRecvmsg)
	case sysShutdown:
		if a[1] > 2 {
			return -eINVAL
		}
		op = opShutdown
	case sysSetsockopt:
		if a[4] > maxOptLen {
			return -eINVAL
		}
		if !userRange(a[3], a[4], false) {
			return -eFAULT
		}
		op = opSetOpt
	case sysGetsockopt:
		if !userRange(a[4], 4, true) {
			return -eFAULT
		}
		n := int32(le.Uint32(userBytes(a[4], 4)))
		if n < 0 {
			return -eINVAL
		}
		if !userRange(a[3], uint64(min(n, maxOptLen)), true) {
			return -eFAULT
		}
		op = opGetOpt
	default:
		return -eNOSYS
	}
	if r != 0 {
		return r
	}
	dontwait := f.nonblock
	switch nr {
	case sysRecvfrom, sysSendto:
		dontwait = dontwait || a[3]&msgDontwait != 0
	case sysRecvmsg, sysSendmsg:
		dontwait = dontwait || a[2]&msgDontwait != 0
	}
	return submit(op, fd, -1, a, dontwait)
}

// sockRW is read(2), write(2), readv(2) and writev(2) on a socket.
func sockRW(fd int64, f *file, op, buf, n uint64) int64 {
	switch op {
	case opReadv, opWritev:
		if r := iovecs(buf, n, op == opReadv); r != 0 {
			return r
		}
	default:
		n = min(n, maxRW)
		if !userRange(buf, n, op == opRecvFrom) {
			return -eFAULT
		}
	}
	return submit(op, fd, -1, [6]uint64{uint64(fd), buf, n}, f.nonblock)
}

// sysReadvFD and sysWritevFD are readv(2) and writev(2): sockets, and
// the console for writev.
func sysReadvFD(fd int64, iov, cnt uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if f.kind != fileSocket || f.sockOpening {
		return -eINVAL
	}
	return sockRW(fd, f, opReadv, iov, cnt)
}

func sysWritevFD(fd int64, iov, cnt uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	switch {
	case f.kind == fileSocket && !f.sockOpening:
		return sockRW(fd, f, opWritev, iov, cnt)
	case f.kind == fileConsole:
		if r := iovecs(iov, cnt, false); r != 0 {
			return r
		}
		total := int64(0)
		b := userBytes(iov, int(cnt*iovecSize))
		for i := uint64(0); i < cnt; i++ {
			base, n := le.Uint64(b[i*iovecSize:]), le.Uint64(b[i*iovecSize+8:])
			total += sysWriteFD(fd, base, n)
		}
		return total
	}
	return -eINVAL
}

// closeSocket hands the close of the socket whose handle was h (its
// descriptor already free) to the serve loop, unless the serve loop never
// saw it.
//
// A close does not wait for the serve loop: a burst of them (a server
// dropping its connections) would hold a thread each. The handle goes to
// the close queue, a file the serve side's closer goroutine reads through
// the netpoller (SysSocketCloseQueue); only when the queue is full does the
// close wait for the serve loop.
func closeSocket(h uint64, served bool) int64 {
	if !sockProvided || !served {
		return 0
	}
	if q := fileFor(int64(closeQueueFD)); closeQueueFD >= 0 && q != nil && q.kind == fileCloseQueue && closeLen < maxDeferred {
		sockClosing[(closeHead+closeLen)%maxDeferred] = h
		closeLen++
		fdReady(int64(closeQueueFD))
		return 0
	}
	return submit(opClose, -1, -1, [6]uint64{h}, true)
}

// The close queue: handles of sockets closed, for the closer goroutine.
var (
	sockClosing         [maxDeferred]uint64
	closeHead, closeLen int
	closeQueueFD        int32 = -1
)

// sysSocketCloseQueue opens the close queue (once) and returns its
// descriptor: readable (EPOLLIN) while closes wait; read(2) returns their
// handles, 8 bytes each.
func sysSocketCloseQueue() int64 {
	if closeQueueFD >= 0 {
		if q := fileFor(int64(closeQueueFD)); q != nil && q.kind == fileCloseQueue {
			return int64(closeQueueFD)
		}
	}
	fd := allocFD(fileCloseQueue)
	if fd < 0 {
		return fd
	}
	fileSlot(fd).nonblock = true
	closeQueueFD = int32(fd)
	return fd
}

// readCloseQueue hands the closes waiting to the closer's buffer.
func readCloseQueue(buf, n uint64) int64 {
	if closeLen == 0 {
		return -eAGAIN
	}
	b := userBytes(buf, int(n))
	k := 0
	for closeLen > 0 && k+8 <= len(b) {
		le.PutUint64(b[k:], sockClosing[closeHead])
		closeHead, closeLen, k = (closeHead+1)%maxDeferred, closeLen-1, k+8
	}
	if k == 0 {
		return -eINVAL
	}
	return int64(k)
}
