// Command netsuite checks behaviours of Go's net and net/http that their
// own test suites check (named beside each case), on the loopback
// interface, and prints a PASS or FAIL line for each and a summary. It
// imports nothing of govirtio: the boot test builds it with cmd/mkimage,
// and the host test runs it on Linux, where every case must pass too, so
// that what it expects is what Linux does.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type testCase struct {
	name string // and the Go test whose behaviour it checks
	run  func() error
}

var cases = []testCase{
	{"listen on an ephemeral port (net.TestTCPListener)", listenEphemeral},
	{"addresses of both ends (net.TestTCPConnSpecificMethods)", connAddresses},
	{"half-close: EOF to the peer, which still answers (net.TestCloseWrite)", halfClose},
	{"read deadline in the past and in the future (net.TestReadTimeout)", readDeadline},
	{"write deadline against a peer that does not read (net.TestWriteTimeout)", writeDeadline},
	{"accept deadline (net.TestAcceptTimeout)", acceptDeadline},
	{"close unblocks Accept and Read (net.TestCloseUnblocksRead)", closeUnblocks},
	{"dial to a closed port is ECONNREFUSED (net.TestDialError)", dialRefused},
	{"second listener on a port is EADDRINUSE (net.TestListenError)", addrInUse},
	{"IPv6 loopback (net.TestTCPServer, tcp6)", ipv6Loopback},
	{"UDP ReadFrom and WriteTo with addresses (net.TestUDPConnSpecificMethods)", udpAddresses},
	{"UDP read deadline (net.TestReadFromTimeout)", udpDeadline},
	{"socket options Go sets (net.TestTCPConnSpecificMethods)", socketOptions},
	{"localhost from /etc/hosts (net.TestLookupStaticHost)", lookupLocalhost},
	{"200 connections at once, 64 KiB each way (net.TestTCPConcurrentAccept)", manyConns},
	{"HTTP keep-alive reuses one connection (http.TestTransportPoolConnReusePriorConnection)", keepAlive},
	{"HTTP chunked response and streamed request body (http.TestChunkedResponseHeaders)", chunked},
	{"HTTP client timeout (http.TestClientTimeout)", clientTimeout},
	{"HTTP server Shutdown waits for a request in flight (http.TestServerShutdown)", shutdown},
	{"HTTPS and HTTP/2 through httptest.NewTLSServer (http.TestTLSServer)", tlsAndH2},
}

func main() {
	failed := 0
	for _, c := range cases {
		start := time.Now()
		err := c.run()
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", c.name, err)
			continue
		}
		fmt.Printf("PASS %s (%v)\n", c.name, time.Since(start).Round(time.Millisecond))
	}
	// Threads made: a burst of socket calls can make one per call.
	fmt.Printf("netsuite: %d passed, %d failed; %d threads made\n", len(cases)-failed, failed, pprof.Lookup("threadcreate").Count())
	if failed > 0 {
		os.Exit(1)
	}
}

// pair returns both ends of a TCP connection on network's loopback.
func pair(network string) (client, server net.Conn, err error) {
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial(network, l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	if server = <-accepted; server == nil {
		client.Close()
		return nil, nil, errors.New("accept failed")
	}
	return client, server, nil
}

func listenEphemeral() error {
	seen := map[int]bool{}
	for i := 0; i < 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		if p == 0 || seen[p] {
			return fmt.Errorf("port %d (ports so far %v)", p, seen)
		}
		seen[p] = true
	}
	return nil
}

func connAddresses() error {
	c, s, err := pair("tcp")
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	if c.LocalAddr().String() != s.RemoteAddr().String() || c.RemoteAddr().String() != s.LocalAddr().String() {
		return fmt.Errorf("client %v->%v, server %v->%v", c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr())
	}
	if ip := c.LocalAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return fmt.Errorf("local address %v", ip)
	}
	return nil
}

func halfClose() error {
	c, s, err := pair("tcp")
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	go func() {
		b, _ := io.ReadAll(s) // to EOF: the client's CloseWrite
		fmt.Fprintf(s, "got %d bytes", len(b))
		s.Close()
	}()
	if _, err := c.Write(make([]byte, 100000)); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "got 100000 bytes" {
		return fmt.Errorf("answer %q, %v", b, err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		return errors.New("write after CloseWrite succeeded")
	}
	return nil
}

func isTimeout(err error) error {
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		return fmt.Errorf("error %v is not a timeout", err)
	}
	return nil
}

func readDeadline() error {
	c, s, err := pair("tcp")
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 1)); isTimeout(err) != nil {
		return isTimeout(err)
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	if err := isTimeout(err); err != nil {
		return err
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		return fmt.Errorf("a 100 ms deadline took %v", d)
	}
	// A deadline moved into the future lets data through.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s.Write([]byte("y"))
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		return fmt.Errorf("read after the deadline moved: %d, %v", n, err)
	}
	return nil
}

func writeDeadline() error {
	c, s, err := pair("tcp")
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 1<<20)
	total := 0
	for {
		n, err := c.Write(buf)
		total += n
		if err != nil {
			if total == 0 {
				return fmt.Errorf("nothing written before %v", err)
			}
			return isTimeout(err)
		}
		if total > 1<<30 {
			return errors.New("1 GiB written to a peer that does not read")
		}
	}
}

func acceptDeadline() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	l.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = l.Accept()
	return isTimeout(err)
}

func closeUnblocks() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	acceptErr := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		acceptErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		return errors.New("Close did not unblock Accept")
	}
	c, s, err := pair("tcp")
	if err != nil {
		return err
	}
	defer s.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("Read after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		return errors.New("Close did not unblock Read")
	}
	return nil
}

func dialRefused() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.Dial("tcp", addr)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("dial: %v, want a *net.OpError with ECONNREFUSED", err)
	}
	return nil
}

func addrInUse() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	l2, err := net.Listen("tcp", l.Addr().String())
	if err == nil {
		l2.Close()
		return errors.New("a second listener on the port")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("second listen: %v, want EADDRINUSE", err)
	}
	return nil
}

func ipv6Loopback() error {
	c, s, err := pair("tcp6")
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	if ip := c.RemoteAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv6loopback) {
		return fmt.Errorf("remote %v", ip)
	}
	go io.Copy(s, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "over ::1\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if line != "over ::1\n" {
		return fmt.Errorf("echo %q, %v", line, err)
	}
	return nil
}

func udpAddresses() error {
	a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer b.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.WriteToUDP([]byte("hello b"), b.LocalAddr().(*net.UDPAddr)); err != nil {
		return err
	}
	buf := make([]byte, 100)
	n, from, err := b.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hello b" || from.String() != a.LocalAddr().String() {
		return fmt.Errorf("b read %q from %v (a is %v): %v", buf[:n], from, a.LocalAddr(), err)
	}
	if _, err := b.WriteTo([]byte("hello a"), from); err != nil {
		return err
	}
	n, from, err = a.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hello a" || from.String() != b.LocalAddr().String() {
		return fmt.Errorf("a read %q from %v: %v", buf[:n], from, err)
	}
	return nil
}

func udpDeadline() error {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, _, err = c.ReadFrom(make([]byte, 10))
	return isTimeout(err)
}

func socketOptions() error {
	c, s, err := pair("tcp")
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	tc := c.(*net.TCPConn)
	for _, err := range []error{
		tc.SetNoDelay(false), tc.SetNoDelay(true),
		tc.SetKeepAlive(true), tc.SetKeepAlivePeriod(30 * time.Second),
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 20 * time.Second, Interval: 5 * time.Second, Count: 3}),
		tc.SetLinger(0), tc.SetReadBuffer(64 << 10), tc.SetWriteBuffer(64 << 10),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func lookupLocalhost() error {
	addrs, err := net.LookupHost("localhost")
	if err != nil {
		return err
	}
	if !slices.Contains(addrs, "127.0.0.1") {
		return fmt.Errorf("localhost is %v", addrs)
	}
	return nil
}

func manyConns() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h := sha256.New()
				io.Copy(h, c)
				c.Write(h.Sum(nil))
			}()
		}
	}()
	const n = 200
	var wg sync.WaitGroup
	var bad atomic.Int32
	var first atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := func() error {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				data := []byte(strings.Repeat(fmt.Sprintf("%08d", i), 8<<10))
				if _, err := c.Write(data); err != nil {
					return err
				}
				c.(*net.TCPConn).CloseWrite()
				got, err := io.ReadAll(c)
				if want := sha256.Sum256(data); err != nil || string(got) != string(want[:]) {
					return fmt.Errorf("connection %d: digest %x, %v", i, got, err)
				}
				return nil
			}()
			if err != nil {
				bad.Add(1)
				first.CompareAndSwap(nil, err)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() > 0 {
		return fmt.Errorf("%d of %d connections failed, first: %v", bad.Load(), n, first.Load())
	}
	return nil
}

func keepAlive() error {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	for i := 0; i < 10; i++ {
		resp, err := client.Get(fmt.Sprintf("%s/%d", srv.URL, i))
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != fmt.Sprintf("hello /%d", i) {
			return fmt.Errorf("GET %d: %q, %v", i, b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		return fmt.Errorf("10 requests took %d connections", n)
	}
	return nil
}

func chunked() error {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "chunk %d;", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "body %d %x", n, h.Sum(nil)[:4])
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 64; i++ {
			pw.Write(make([]byte, 16<<10))
		}
		pw.Close()
	}()
	resp, err := http.Post(srv.URL, "application/octet-stream", pr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	want := sha256.Sum256(make([]byte, 1<<20))
	wantBody := fmt.Sprintf("chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;body %d %x", 1<<20, want[:4])
	if err != nil || string(b) != wantBody || !slices.Contains(resp.TransferEncoding, "chunked") {
		return fmt.Errorf("%q (transfer encoding %v), %v", b, resp.TransferEncoding, err)
	}
	return nil
}

func clientTimeout() error {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	_, err := client.Get(srv.URL)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return fmt.Errorf("GET of a server that does not answer: %v, want a timeout", err)
	}
	return nil
}

func shutdown() error {
	started, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	defer srv.Close()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	done := make(chan error, 1)
	go func() { done <- srv.Config.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		return fmt.Errorf("Shutdown returned before the request finished: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second); err == nil {
		return errors.New("the listener still accepts after Shutdown")
	}
	close(release)
	if body := <-got; body != "finished" {
		return fmt.Errorf("the request in flight got %q", body)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("Shutdown: %v", err)
	}
	return nil
}

func tlsAndH2() error {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s over TLS", r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "HTTP/2.0 over TLS" || resp.TLS == nil || !resp.TLS.HandshakeComplete {
		return fmt.Errorf("%q, TLS %v, %v", b, resp.TLS != nil, err)
	}
	return nil
}
