package kernel

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// The serve loop: ordinary Go code, run by the program's goroutines, that
// answers the socket calls the kernel hands over (socket.go) with a
// SocketStack, the network stack package network registers. It decodes
// each call's arguments (the kernel has checked every pointer, so the
// program's memory can be read and written directly), calls the stack,
// writes the results back and answers.

// SocketStack makes the sockets behind the socket system calls.
type SocketStack interface {
	// Socket makes a socket of domain (AF_INET, AF_INET6), type
	// (SOCK_STREAM, SOCK_DGRAM; the flags are the kernel's) and
	// protocol. The socket reports its events through h.
	Socket(h *SocketHandle, domain, typ, protocol int) (Socket, syscall.Errno)
}

// Socket is one socket of a SocketStack. Its methods never block: the
// kernel waits for readiness itself when the program's socket is a
// blocking one. Errors are Linux's errno values, which the program sees.
// Addresses are struct sockaddr_in or sockaddr_in6 bytes.
type Socket interface {
	Bind(addr []byte) syscall.Errno
	Listen(backlog int) syscall.Errno
	// Accept takes a connection waiting on a listening socket (EAGAIN
	// when none is); the new socket reports its events through h.
	Accept(h *SocketHandle) (s Socket, peer []byte, err syscall.Errno)
	// Connect starts a connection; EINPROGRESS when it does not complete
	// at once.
	Connect(addr []byte) syscall.Errno
	// ConnectResult is the outcome of a connect in progress: EINPROGRESS
	// while it lasts, then what SO_ERROR gives.
	ConnectResult() syscall.Errno
	// Name returns the socket's own address, or its peer's.
	Name(peer bool) ([]byte, syscall.Errno)
	// Recv reads into bufs (MSG_PEEK, MSG_TRUNC in flags); from is the
	// sender's address when wantFrom is set; msgFlags what recvmsg
	// reports (MSG_TRUNC).
	Recv(bufs [][]byte, flags int, wantFrom bool) (n int, from []byte, msgFlags int, err syscall.Errno)
	// Send writes bufs, to the address to if it is not nil.
	Send(bufs [][]byte, to []byte, flags int) (int, syscall.Errno)
	Shutdown(how int) syscall.Errno
	SetOption(level, name int, value []byte) syscall.Errno
	// Option writes the option's value into value (no longer than it)
	// and returns its length.
	Option(level, name int, value []byte) (int, syscall.Errno)
	// Readiness returns the epoll events the socket would report now.
	Readiness() uint32
	Close()
}

// SocketHandle is the kernel's name for one socket; the stack reports the
// socket's events through it.
type SocketHandle struct {
	id  uint64        // the kernel's handle (generation and descriptor)
	ver atomic.Uint32 // versions the socket's readiness reports
}

// Notify reports that events (epoll bits) happened on the socket: the
// kernel adds them to the socket's readiness and wakes its waiters. The
// stack calls it from its own callbacks; it never blocks.
func (h *SocketHandle) Notify(events uint32) {
	v := h.ver.Add(1)
	socketReady(h.id, uint64(events)|uint64(v)<<32)
}

// socketReady makes the SysSocketReady call. Host-side tests replace it
// with a call into the kernel's handler.
var socketReady = func(handle, word uint64) {
	syscall.RawSyscall(SysSocketReady, uintptr(handle), uintptr(word), 0)
}

// report is a readiness word for an answer: the version is taken before
// the state is read (see sockReadiness).
func (h *SocketHandle) report(s Socket) uint64 {
	v := h.ver.Add(1)
	return uint64(s.Readiness()) | uint64(v)<<32
}

// sockEntry is an open socket in the serve loop's table.
type sockEntry struct {
	h *SocketHandle
	s Socket
}

// sockServer is the serve loop's state.
type sockServer struct {
	stack   atomic.Pointer[stackBox]
	mu      sync.Mutex  // guards socks
	socks   []sockEntry // by descriptor; the handle tells sockets apart
	running atomic.Bool // the serve loop was started
	closeFD int         // the close queue (SysSocketCloseQueue), or -1
	closeMu sync.Mutex  // held while closes are read from the queue and done
}

type stackBox struct{ s SocketStack }

var sockets sockServer

// ServeSockets makes stack answer the program's socket system calls from
// now on, replacing the stack that did before (calls already taken finish
// on it). The first call starts the serve loop.
func ServeSockets(stack SocketStack) {
	if _, _, e := syscall.RawSyscall(SysSocketProvide, 1, 0, 0); e != 0 {
		return // not on the govirtio kernel (a test on a host)
	}
	sockets.stack.Store(&stackBox{stack})
	if sockets.running.CompareAndSwap(false, true) {
		sockets.closeFD = -1
		if fd, _, e := syscall.RawSyscall(SysSocketCloseQueue, 0, 0, 0); e == 0 {
			if q, err := os.NewFile(fd, "socket-close-queue").SyscallConn(); err == nil {
				sockets.closeFD = int(fd)
				go sockets.closer(q)
			}
		}
		go sockets.loop()
	}
}

// closer closes the stack's sockets whose descriptors the program closed:
// it waits for them in the netpoller, holding no thread (see
// closeSocket in socket.go).
func (sv *sockServer) closer(q syscall.RawConn) {
	buf := make([]byte, 8*256)
	for {
		err := q.Read(func(fd uintptr) bool {
			// Read and close under closeMu, so that handle, once
			// it has the lock, knows every close taken from the queue
			// before it is done.
			sv.closeMu.Lock()
			defer sv.closeMu.Unlock()
			n, e := readCloses(int(fd), buf)
			if e == nil && n > 0 {
				sv.closeAll(buf[:n])
			}
			return e != syscall.EAGAIN
		})
		if err != nil {
			return
		}
	}
}

// readCloses reads handles from the close queue without blocking.
// Host-side tests replace it with a call into the kernel's handler.
var readCloses = func(fd int, b []byte) (int, error) { return syscall.Read(fd, b) }

// handle performs one call handed over in req: first the closes made
// before it (see sockRequest.Closing), then the call itself. Taking
// closeMu also waits for the closes the closer has taken from the queue
// and not yet done (the kernel no longer counts those).
func (sv *sockServer) handle(req *sockRequest, closes []byte) (result int64, ready, readyNew uint64) {
	sv.closeMu.Lock()
	for req.Closing > 0 && sv.closeFD >= 0 {
		n, err := readCloses(sv.closeFD, closes)
		if err != nil || n <= 0 {
			break
		}
		sv.closeAll(closes[:n])
	}
	sv.closeMu.Unlock()
	return sv.serve(req)
}

// closeAll closes the sockets whose handles are in b.
func (sv *sockServer) closeAll(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		if e, ok := sv.remove(le.Uint64(b[i:])); ok {
			e.s.Close()
		}
	}
}

// StopServingSockets makes socket(2) fail with EAFNOSUPPORT, as it does
// before any stack serves: for a program whose network could not come up.
// Sockets already open keep the stack they have.
func StopServingSockets() {
	syscall.RawSyscall(SysSocketProvide, 0, 0, 0)
}

// loop waits for calls and answers them, one at a time. There is one
// loop: a second one would enter its first wait through the scheduler,
// holding the P with no caller to take it back (see doc.go, "Sockets").
func (sv *sockServer) loop() {
	req := new(sockRequest)
	closes := make([]byte, 8*256)
	var tag uint64
	var result int64
	var ready, readyNew uint64
	for {
		_, _, e := syscall.Syscall6(SysSocketServe, uintptr(tag), uintptr(result), uintptr(ready), uintptr(readyNew),
			uintptr(unsafe.Pointer(req)), 0)
		tag = 0
		if e == syscall.EINTR {
			continue // the answer, if any, went through
		}
		if e != 0 {
			sv.running.Store(false)
			return // a bad buffer: cannot happen
		}
		tag = req.Tag
		if req.Resched != 0 {
			runtime.Gosched() // see sockRequest.Resched
		}
		result, ready, readyNew = sv.handle(req, closes)
	}
}

// lookup returns the socket named by handle.
func (sv *sockServer) lookup(handle uint64) (sockEntry, bool) {
	fd := int(uint32(handle))
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if fd >= len(sv.socks) || sv.socks[fd].h == nil || sv.socks[fd].h.id != handle {
		return sockEntry{}, false
	}
	return sv.socks[fd], true
}

// install records a new socket.
func (sv *sockServer) install(e sockEntry) {
	fd := int(uint32(e.h.id))
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if fd >= len(sv.socks) {
		n := max(64, 2*len(sv.socks))
		for n <= fd {
			n *= 2
		}
		grown := make([]sockEntry, n)
		copy(grown, sv.socks)
		sv.socks = grown
	}
	sv.socks[fd] = e
}

// remove forgets the socket named by handle and returns it.
func (sv *sockServer) remove(handle uint64) (sockEntry, bool) {
	fd := int(uint32(handle))
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if fd >= len(sv.socks) || sv.socks[fd].h == nil || sv.socks[fd].h.id != handle {
		return sockEntry{}, false
	}
	e := sv.socks[fd]
	sv.socks[fd] = sockEntry{}
	return e, true
}

// userMem is n bytes of the program's memory at va (checked by the
// kernel).
func userMem(va, n uint64) []byte {
	if n == 0 || va == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(virtPtr(va)), n)
}

// putAddr writes addr to the buffer at va whose length is at lenp
// (truncating, as Linux does) and stores addr's real length at lenp.
func putAddr(va, lenp uint64, addr []byte) {
	if va == 0 || lenp == 0 {
		return
	}
	l := userMem(lenp, 4)
	copy(userMem(va, uint64(le.Uint32(l))), addr)
	le.PutUint32(l, uint32(len(addr)))
}

// iovBufs returns the buffers of cnt iovecs at iov, up to maxRW bytes.
func iovBufs(iov, cnt uint64) [][]byte {
	b := userMem(iov, cnt*iovecSize)
	bufs := make([][]byte, 0, cnt)
	total := uint64(0)
	for i := uint64(0); i < cnt; i++ {
		base, n := le.Uint64(b[i*iovecSize:]), le.Uint64(b[i*iovecSize+8:])
		n = min(n, maxRW-total)
		if n > 0 {
			bufs = append(bufs, userMem(base, n))
		}
		total += n
	}
	return bufs
}

func errResult(e syscall.Errno) int64 { return -int64(e) }

// serve performs one call and returns its result and the readiness of
// the socket called on and of the one it opened.
func (sv *sockServer) serve(req *sockRequest) (result int64, ready, readyNew uint64) {
	box := sv.stack.Load()
	a := req.Args
	req.NameSock = 0
	if req.Op == opClose {
		if e, ok := sv.remove(a[0]); ok {
			e.s.Close()
		}
		return 0, 0, 0
	}
	e, ok := sv.lookup(req.Sock)
	if !ok {
		// The socket's first call: socket(2) only opened the descriptor.
		h := &SocketHandle{id: req.Sock}
		c := req.Create
		s, errno := box.s.Socket(h, int(uint16(c)), int(uint16(c>>16)), int(uint16(c>>32)))
		if errno != 0 {
			return errResult(errno), 0, 0
		}
		e = sockEntry{h, s}
		sv.install(e)
	}
	s := e.s
	var errno syscall.Errno
	switch req.Op {
	case opBind:
		errno = s.Bind(userMem(a[1], a[2]))
	case opConnect:
		errno = s.Connect(userMem(a[1], a[2]))
	case opConnectResult:
		errno = s.ConnectResult()
	case opListen:
		errno = s.Listen(int(int32(a[1])))
	case opAccept:
		h := &SocketHandle{id: req.NewSock}
		ns, peer, err := s.Accept(h)
		if err != 0 {
			errno = err
			break
		}
		sv.install(sockEntry{h, ns})
		putAddr(a[1], a[2], peer)
		reportNames(req, h.id, ns)
		return 0, e.h.report(s), h.report(ns)
	case opRecvFrom, opReadv:
		var bufs [][]byte
		flags := 0
		if req.Op == opReadv {
			bufs = iovBufs(a[1], a[2])
		} else {
			bufs, flags = [][]byte{userMem(a[1], a[2])}, int(a[3])
		}
		n, from, _, err := s.Recv(bufs, flags, a[4] != 0)
		if err != 0 {
			errno = err
			break
		}
		putAddr(a[4], a[5], from)
		result = int64(n)
	case opSendTo, opWritev:
		var bufs [][]byte
		var to []byte
		flags := 0
		if req.Op == opWritev {
			bufs = iovBufs(a[1], a[2])
		} else {
			bufs, flags, to = [][]byte{userMem(a[1], a[2])}, int(a[3]), userMem(a[4], a[5])
		}
		n, err := s.Send(bufs, to, flags)
		if err != 0 {
			errno = err
			break
		}
		result = int64(n)
	case opRecvMsg:
		m := userMem(a[1], msghdrSize)
		name, iov, iovlen := le.Uint64(m), le.Uint64(m[16:]), le.Uint64(m[24:])
		n, from, msgFlags, err := s.Recv(iovBufs(iov, iovlen), int(a[2]), name != 0)
		if err != 0 {
			errno = err
			break
		}
		if name != 0 {
			copy(userMem(name, uint64(le.Uint32(m[8:]))), from)
			le.PutUint32(m[8:], uint32(len(from)))
		}
		le.PutUint64(m[40:], 0) // no control messages
		le.PutUint32(m[48:], uint32(msgFlags))
		result = int64(n)
	case opSendMsg:
		m := userMem(a[1], msghdrSize)
		name, namelen, iov, iovlen := le.Uint64(m), uint64(le.Uint32(m[8:])), le.Uint64(m[16:]), le.Uint64(m[24:])
		n, err := s.Send(iovBufs(iov, iovlen), userMem(name, namelen), int(a[2]))
		if err != 0 {
			errno = err
			break
		}
		result = int64(n)
	case opShutdown:
		errno = s.Shutdown(int(a[1]))
	case opSetOpt:
		errno = s.SetOption(int(int32(a[1])), int(int32(a[2])), userMem(a[3], a[4]))
	case opGetOpt:
		l := userMem(a[4], 4)
		n, err := s.Option(int(int32(a[1])), int(int32(a[2])), userMem(a[3], uint64(min(le.Uint32(l), maxOptLen))))
		if err != 0 {
			errno = err
			break
		}
		le.PutUint32(l, uint32(n))
	default:
		errno = syscall.ENOSYS
	}
	if errno != 0 {
		result = errResult(errno)
	}
	switch req.Op {
	case opBind, opConnect, opConnectResult, opListen, opGetOpt:
		reportNames(req, req.Sock, s)
	}
	return result, e.h.report(s), 0
}

// reportNames leaves the addresses of socket s (handle h) in req for the
// kernel, which answers getsockname and getpeername from them.
func reportNames(req *sockRequest, h uint64, s Socket) {
	req.NameSock = h
	local, _ := s.Name(false)
	peer, _ := s.Name(true)
	req.LocalLen = uint64(copy(req.Local[:], local))
	req.PeerLen = uint64(copy(req.Peer[:], peer))
}
