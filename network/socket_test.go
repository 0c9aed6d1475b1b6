package network

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/govirtio/govirtio/runtime/kernel"
)

// The socket stack over netstack on the host: a network's stack, with
// only its loopback NIC, the sockets driven as the kernel's serve loop drives them
// (their event reports go nowhere off the govirtio kernel), checked for
// what Linux answers.

func loopbackNetwork(t *testing.T) socketStack {
	t.Helper()
	s, err := newStack(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); s.Wait() })
	return socketStack{&Network{Stack: s, mem: newMemoryGauge()}}
}

func inet4(port uint16) []byte {
	b := make([]byte, syscall.SizeofSockaddrInet4)
	binary.LittleEndian.PutUint16(b, syscall.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], []byte{127, 0, 0, 1})
	return b
}

func newSocket(t *testing.T, st socketStack, typ int) kernel.Socket {
	t.Helper()
	s, e := st.Socket(&kernel.SocketHandle{}, syscall.AF_INET, typ, 0)
	if e != 0 {
		t.Fatalf("socket: %v", e)
	}
	t.Cleanup(s.Close)
	return s
}

// eventually retries f until it returns other than EAGAIN or EINPROGRESS.
func eventually(t *testing.T, f func() syscall.Errno) syscall.Errno {
	t.Helper()
	for i := 0; i < 500; i++ {
		if e := f(); e != syscall.EAGAIN && e != syscall.EINPROGRESS {
			return e
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("still in progress after a second")
	return 0
}

func TestStreamSocketsAsLinux(t *testing.T) {
	st := loopbackNetwork(t)
	ln := newSocket(t, st, syscall.SOCK_STREAM)
	if e := ln.SetOption(syscall.SOL_SOCKET, soReuseaddr, []byte{1, 0, 0, 0}); e != 0 {
		t.Fatalf("SO_REUSEADDR: %v", e)
	}
	if e := ln.Bind(inet4(8080)); e != 0 {
		t.Fatalf("bind: %v", e)
	}
	if e := ln.Listen(16); e != 0 {
		t.Fatalf("listen: %v", e)
	}
	if _, _, e := ln.Accept(&kernel.SocketHandle{}); e != syscall.EAGAIN {
		t.Errorf("accept with nothing waiting: %v, want EAGAIN", e)
	}
	if ln.Readiness()&uint32(syscall.EPOLLIN) != 0 {
		t.Errorf("an idle listener is readable")
	}

	cl := newSocket(t, st, syscall.SOCK_STREAM)
	if e := cl.Connect(inet4(8080)); e != syscall.EINPROGRESS && e != 0 {
		t.Fatalf("connect: %v, want EINPROGRESS", e)
	}
	if e := eventually(t, cl.ConnectResult); e != 0 {
		t.Fatalf("connect outcome: %v", e)
	}
	if peer, e := cl.Name(true); e != 0 || binary.BigEndian.Uint16(peer[2:]) != 8080 {
		t.Errorf("getpeername after connect: %v %v", peer, e)
	}
	var srv kernel.Socket
	eventually(t, func() syscall.Errno {
		var e syscall.Errno
		srv, _, e = ln.Accept(&kernel.SocketHandle{})
		return e
	})
	defer srv.Close()
	local, _ := cl.Name(false)
	if peer, _ := srv.Name(true); string(peer) != string(local) {
		t.Errorf("the server's peer %v is not the client's address %v", peer, local)
	}

	buf := make([]byte, 64)
	if _, _, _, e := srv.Recv([][]byte{buf}, 0, false); e != syscall.EAGAIN {
		t.Errorf("read with nothing sent: %v, want EAGAIN", e)
	}
	if n, e := cl.Send([][]byte{[]byte("hel"), []byte("lo")}, nil, 0); n != 5 || e != 0 {
		t.Fatalf("writev: %d %v", n, e)
	}
	var n int
	eventually(t, func() syscall.Errno {
		var e syscall.Errno
		n, _, _, e = srv.Recv([][]byte{buf[:2], buf[2:]}, 0, false)
		return e
	})
	if n != 5 || string(buf[:5]) != "hello" {
		t.Errorf("readv got %d %q", n, buf[:n])
	}
	// Half-close: the client shuts its sending side; the server reads end
	// of stream (and EPOLLRDHUP) and can still send.
	if e := cl.Shutdown(syscall.SHUT_WR); e != 0 {
		t.Fatalf("shutdown: %v", e)
	}
	eventually(t, func() syscall.Errno {
		if srv.Readiness()&uint32(syscall.EPOLLRDHUP) == 0 {
			return syscall.EAGAIN
		}
		return 0
	})
	if n, _, _, e := srv.Recv([][]byte{buf}, 0, false); n != 0 || e != 0 {
		t.Errorf("read after the peer's shutdown: %d %v, want 0 (end of stream)", n, e)
	}
	if n, e := srv.Send([][]byte{[]byte("bye")}, nil, 0); n != 3 || e != 0 {
		t.Errorf("write on a half-closed connection: %d %v", n, e)
	}
	eventually(t, func() syscall.Errno {
		var e syscall.Errno
		n, _, _, e = cl.Recv([][]byte{buf}, 0, false)
		return e
	})
	if string(buf[:n]) != "bye" {
		t.Errorf("the client read %q", buf[:n])
	}
	if _, e := cl.Send([][]byte{[]byte("x")}, nil, 0); e != syscall.EPIPE {
		t.Errorf("write after shutdown(SHUT_WR): %v, want EPIPE", e)
	}
}

func TestConnectToAClosedPortIsRefused(t *testing.T) {
	st := loopbackNetwork(t)
	cl := newSocket(t, st, syscall.SOCK_STREAM)
	if e := cl.Connect(inet4(9)); e != syscall.EINPROGRESS && e != syscall.ECONNREFUSED {
		t.Fatalf("connect: %v", e)
	}
	if e := eventually(t, cl.ConnectResult); e != syscall.ECONNREFUSED {
		t.Errorf("connect outcome %v, want ECONNREFUSED", e)
	}
	if _, e := cl.Name(true); e != syscall.ENOTCONN {
		t.Errorf("getpeername of a refused socket: %v, want ENOTCONN", e)
	}
}

func TestDatagramSocketsAsLinux(t *testing.T) {
	st := loopbackNetwork(t)
	a, b := newSocket(t, st, syscall.SOCK_DGRAM), newSocket(t, st, syscall.SOCK_DGRAM)
	if e := a.Bind(inet4(7)); e != 0 {
		t.Fatal(e)
	}
	if e := b.Bind(inet4(0)); e != 0 {
		t.Fatal(e)
	}
	if e := a.Bind(inet4(8)); e != syscall.EINVAL {
		t.Errorf("a second bind: %v, want EINVAL", e)
	}
	other := newSocket(t, st, syscall.SOCK_DGRAM)
	if e := other.Bind(inet4(7)); e != syscall.EADDRINUSE {
		t.Errorf("bind to a port in use: %v, want EADDRINUSE", e)
	}
	if n, e := b.Send([][]byte{[]byte("ping")}, inet4(7), 0); n != 4 || e != 0 {
		t.Fatalf("sendto: %d %v", n, e)
	}
	buf := make([]byte, 2)
	var n, flags int
	var from []byte
	eventually(t, func() syscall.Errno {
		var e syscall.Errno
		n, from, flags, e = a.Recv([][]byte{buf}, msgTrunc, true)
		return e
	})
	bname, _ := b.Name(false)
	if n != 4 || flags&msgTrunc == 0 || string(from) != string(bname) {
		t.Errorf("recvfrom into 2 bytes with MSG_TRUNC: n %d flags %#x from %v; want 4, MSG_TRUNC, %v", n, flags, from, bname)
	}
	if e := b.SetOption(syscall.SOL_SOCKET, soBroadcast, []byte{1, 0, 0, 0}); e != 0 {
		t.Errorf("SO_BROADCAST: %v", e)
	}
}

func TestSocketOptionsGoSets(t *testing.T) {
	st := loopbackNetwork(t)
	s := newSocket(t, st, syscall.SOCK_STREAM)
	one := []byte{1, 0, 0, 0}
	get := func(level, name int) int {
		t.Helper()
		v := make([]byte, 4)
		if n, e := s.Option(level, name, v); n != 4 || e != 0 {
			t.Fatalf("getsockopt(%d, %d): %d %v", level, name, n, e)
		}
		return int(int32(binary.LittleEndian.Uint32(v)))
	}
	for _, o := range []struct {
		level, name, value int
	}{
		{syscall.IPPROTO_TCP, tcpNodelay, 1},
		{syscall.SOL_SOCKET, soKeepalive, 1},
		{syscall.IPPROTO_TCP, tcpKeepidle, 15},
		{syscall.IPPROTO_TCP, tcpKeepintvl, 15},
		{syscall.IPPROTO_TCP, tcpKeepcnt, 9},
		{syscall.SOL_SOCKET, soReuseaddr, 1},
	} {
		v := make([]byte, 4)
		binary.LittleEndian.PutUint32(v, uint32(o.value))
		if e := s.SetOption(o.level, o.name, v); e != 0 {
			t.Errorf("setsockopt(%d, %d, %d): %v", o.level, o.name, o.value, e)
		}
		if got := get(o.level, o.name); got != o.value {
			t.Errorf("getsockopt(%d, %d) = %d after setting %d", o.level, o.name, got, o.value)
		}
	}
	if got := get(syscall.SOL_SOCKET, soType); got != syscall.SOCK_STREAM {
		t.Errorf("SO_TYPE %d", got)
	}
	if got := get(syscall.SOL_SOCKET, soError); got != 0 {
		t.Errorf("SO_ERROR %d on a new socket", got)
	}
	linger := make([]byte, 8)
	binary.LittleEndian.PutUint32(linger, 1)
	binary.LittleEndian.PutUint32(linger[4:], 5)
	if e := s.SetOption(syscall.SOL_SOCKET, soLinger, linger); e != 0 {
		t.Errorf("SO_LINGER: %v", e)
	}
	if e := s.SetOption(syscall.SOL_SOCKET, soRcvbuf, []byte{0, 0, 1, 0}); e != 0 {
		t.Errorf("SO_RCVBUF: %v", e)
	}
	if e := s.SetOption(syscall.IPPROTO_IP, 99, one); e != syscall.ENOPROTOOPT {
		t.Errorf("an unknown option: %v, want ENOPROTOOPT", e)
	}
	s6, e := st.Socket(&kernel.SocketHandle{}, syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if e != 0 {
		t.Fatal(e)
	}
	defer s6.Close()
	if e := s6.SetOption(syscall.IPPROTO_IPV6, ipv6V6only, one); e != 0 {
		t.Errorf("IPV6_V6ONLY: %v", e)
	}
	if _, e := st.Socket(&kernel.SocketHandle{}, syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_UDP); e != syscall.EPROTONOSUPPORT {
		t.Errorf("a stream socket over UDP: %v", e)
	}
}

// tcpip.Error values the program can see are Linux's errno values.
func TestNetstackErrorsAreLinuxErrnos(t *testing.T) {
	for _, c := range []struct {
		err  tcpip.Error
		want syscall.Errno
	}{
		{&tcpip.ErrWouldBlock{}, syscall.EAGAIN},
		{&tcpip.ErrConnectStarted{}, syscall.EINPROGRESS},
		{&tcpip.ErrConnectionRefused{}, syscall.ECONNREFUSED},
		{&tcpip.ErrConnectionReset{}, syscall.ECONNRESET},
		{&tcpip.ErrPortInUse{}, syscall.EADDRINUSE},
		{&tcpip.ErrTimeout{}, syscall.ETIMEDOUT},
		{&tcpip.ErrNotConnected{}, syscall.ENOTCONN},
		{&tcpip.ErrNetworkUnreachable{}, syscall.ENETUNREACH},
		{&tcpip.ErrClosedForSend{}, syscall.EPIPE},
	} {
		if got := errno(c.err); got != c.want {
			t.Errorf("%v became %v, want %v", c.err, got, c.want)
		}
	}
}

// A connection in TIME-WAIT does not keep the program's buffers alive:
// netstack keeps its endpoint for a minute, and with it the last reader a
// write went through, so Send must not leave the program's memory in it
// (200 connections a second would pin 13 MB a second of written buffers).
func TestTimeWaitKeepsNoWrittenBuffer(t *testing.T) {
	st := loopbackNetwork(t)
	ln := newSocket(t, st, syscall.SOCK_STREAM)
	if e := ln.Bind(inet4(8081)); e != 0 {
		t.Fatal(e)
	}
	if e := ln.Listen(16); e != 0 {
		t.Fatal(e)
	}
	cl, e := st.Socket(&kernel.SocketHandle{}, syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if e != 0 {
		t.Fatal(e)
	}
	cl.Connect(inet4(8081))
	if e := eventually(t, cl.ConnectResult); e != 0 {
		t.Fatalf("connect: %v", e)
	}
	var srv kernel.Socket
	eventually(t, func() syscall.Errno {
		srv, _, e = ln.Accept(&kernel.SocketHandle{})
		return e
	})
	collected := make(chan struct{})
	func() {
		written := make([]byte, 64<<10)
		runtime.AddCleanup(&written[0], func(c chan struct{}) { close(c) }, collected)
		if n, e := cl.Send([][]byte{written}, nil, 0); n != len(written) || e != 0 {
			t.Fatalf("send: %d, %v", n, e)
		}
	}()
	// The client closes first, so it is the end that waits in TIME-WAIT.
	buf := make([]byte, 128<<10)
	cl.Close()
	eventually(t, func() syscall.Errno {
		n, _, _, e := srv.Recv([][]byte{buf}, 0, false)
		if e == 0 && n > 0 {
			return syscall.EAGAIN // more to read before the end
		}
		return e
	})
	srv.Close()
	eventually(t, func() syscall.Errno { // the server's end is gone, the client's waits
		if st.n.Stack.Stats().TCP.CurrentConnected.Value() != 1 {
			return syscall.EAGAIN
		}
		return 0
	})
	for i := 0; i < 50; i++ {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Error("the buffer the client wrote is still alive in its TIME-WAIT endpoint")
}

// A listener of the program's sockets sheds load as ListenTCP's do: while
// memory is short it accepts nothing and does not report the connection
// waiting for it, and once memory is back it is readable again and the
// connection, which waited in the queue, is accepted.
func TestListenerStopsAcceptingWhileMemoryIsShort(t *testing.T) {
	st := loopbackNetwork(t)
	var short atomic.Bool
	st.n.mem.shortForTest = short.Load
	ln := newSocket(t, st, syscall.SOCK_STREAM)
	if e := ln.Bind(inet4(8082)); e != 0 {
		t.Fatal(e)
	}
	if e := ln.Listen(16); e != 0 {
		t.Fatal(e)
	}
	cl := newSocket(t, st, syscall.SOCK_STREAM)
	cl.Connect(inet4(8082))
	if e := eventually(t, cl.ConnectResult); e != 0 {
		t.Fatalf("connect: %v", e)
	}
	eventually(t, func() syscall.Errno {
		if ln.Readiness()&uint32(syscall.EPOLLIN) == 0 {
			return syscall.EAGAIN
		}
		return 0
	})
	short.Store(true)
	if _, _, e := ln.Accept(&kernel.SocketHandle{}); e != syscall.EAGAIN {
		t.Fatalf("accept while memory is short: %v, want EAGAIN", e)
	}
	if ln.Readiness()&uint32(syscall.EPOLLIN) != 0 {
		t.Error("a listener shedding load reports a connection to accept")
	}
	time.Sleep(3 * shedPoll)
	if _, _, e := ln.Accept(&kernel.SocketHandle{}); e != syscall.EAGAIN || st.n.acceptWaits.Load() != 1 {
		t.Fatalf("accept while memory is still short: %v (%d waits), want EAGAIN (1)", e, st.n.acceptWaits.Load())
	}
	short.Store(false)
	eventually(t, func() syscall.Errno {
		if ln.Readiness()&uint32(syscall.EPOLLIN) == 0 {
			return syscall.EAGAIN
		}
		return 0
	})
	srv, _, e := ln.Accept(&kernel.SocketHandle{})
	if e != 0 {
		t.Fatalf("accept once memory is back: %v", e)
	}
	srv.Close()
}
