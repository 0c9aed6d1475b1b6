package network_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
)

// An unmodified Go program on the network: network/testdata/stdnet uses
// only the standard library's net and net/http (the kernel's socket
// system calls, the network brought up by network/auto), under QEMU with
// user networking. GET, 16 MiB each way with SHA-256, a dial to a closed
// port, a UDP echo, and 2000 TCP connections open at once.

// stdnetGuest boots stdnet with ports for HTTP (80), the pong server (81)
// and UDP echo (7) forwarded from the host.
type stdnetGuest struct {
	g               *boottest.Guest
	http, pong, udp int
	base            string
}

func bootStdnet(t *testing.T, mem string) *stdnetGuest {
	t.Helper()
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "network/testdata/stdnet")
	s := &stdnetGuest{http: boottest.FreePort(t), pong: boottest.FreePort(t), udp: boottest.FreePort(t)}
	s.g = boottest.Start(t, img, "-m", mem, "-net", "user", "-fwd", fmt.Sprint(s.http),
		"-hostfwd", fmt.Sprintf("tcp:127.0.0.1:%d-:81", s.pong),
		"-hostfwd", fmt.Sprintf("udp:127.0.0.1:%d-:7", s.udp))
	s.g.WaitFor(`stdnet: serving`, 3*time.Minute)
	s.base = fmt.Sprintf("http://127.0.0.1:%d", s.http)
	return s
}

func TestStandardLibraryNetOnAutoNetwork(t *testing.T) {
	s := bootStdnet(t, "256M")
	out := s.g.Output()
	if !strings.Contains(out, "*net.OpError true, ECONNREFUSED true") {
		t.Errorf("a dial to a closed port did not give ECONNREFUSED as a *net.OpError:\n%s", out)
	}
	if body := get(t, s.base+"/"); body != "stdnet ok\n" {
		t.Errorf("GET / answered %q", body)
	}
	down := download(t, s.base, 16<<20)
	up := upload(t, s.base, 16<<20)
	t.Logf("16 MiB down %.1f MB/s, up %.1f MB/s", down, up)

	t.Run("UDP echo", func(t *testing.T) {
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", s.udp))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 2048)
		for i := 0; i < 3; i++ {
			msg := fmt.Sprintf("datagram %d %s", i, strings.Repeat("x", 1000))
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("no echo of datagram %d: %v", i, err)
			}
			if string(buf[:n]) != msg {
				t.Fatalf("echo of datagram %d is %q", i, buf[:min(n, 40)])
			}
		}
	})

	t.Run("2000 connections at once", func(t *testing.T) {
		const n = 2000
		conns := holdConnections(t, s.pong, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		if len(conns) < n {
			t.Fatalf("only %d of %d connections opened", len(conns), n)
		}
		if body := get(t, s.base+"/open"); !strings.HasPrefix(body, fmt.Sprintf("open %d ", n)) {
			t.Errorf("with %d connections open the guest reports %q", n, strings.TrimSpace(body))
		}
		// Every connection is still served.
		var wg sync.WaitGroup
		var mu sync.Mutex
		lost := 0
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !exchange(c.Conn, c.r, "bye") {
					mu.Lock()
					lost++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if lost > 0 {
			t.Errorf("%d of %d connections lost", lost, n)
		}
	})
	t.Logf("kernel and network after the test:\n%s", lastLines(s.g.Output(), 5))
}

// heldConn is a connection to the pong server and its reader.
type heldConn struct {
	net.Conn
	r *bufio.Reader
}

// holdConnections opens n connections to the pong server, each answered
// once, and keeps them open. It stops at the first failure. It opens them
// one at a time: QEMU's user networking listens for a forwarded port with
// a backlog of 1, so that connects in parallel overflow the host's accept
// queue and wait for SYN retransmissions (a second, then 3, 7, 15...).
func holdConnections(t *testing.T, port, n int) []heldConn {
	t.Helper()
	var conns []heldConn
	const parallel = 1
	results := make(chan heldConn, parallel)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for len(conns) < n {
		batch := min(parallel, n-len(conns))
		for i := 0; i < batch; i++ {
			go func(i int) {
				c, err := net.DialTimeout("tcp", addr, time.Minute)
				if err != nil {
					t.Logf("dial %d: %v", i, err)
					results <- heldConn{}
					return
				}
				r := bufio.NewReader(c)
				if !exchange(c, r, "ping "+strconv.Itoa(i)) {
					c.Close()
					results <- heldConn{}
					return
				}
				results <- heldConn{c, r}
			}(len(conns) + i)
		}
		if len(conns)%1000 == 0 {
			t.Logf("%d connections open", len(conns))
		}
		failed := false
		for i := 0; i < batch; i++ {
			if c := <-results; c.Conn != nil {
				conns = append(conns, c)
			} else {
				failed = true
			}
		}
		if failed {
			break
		}
	}
	return conns
}

// exchange sends line and checks the pong.
func exchange(c net.Conn, r *bufio.Reader, line string) bool {
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return false
	}
	got, err := r.ReadString('\n')
	return err == nil && got == "pong "+line+"\n"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestConnectionsHeldIn256M opens connections to the pong server until
// one fails (GOVIRTIO_MAXCONN=N bounds them; unset, the test is skipped):
// how many an image with -m 256M (GOVIRTIO_MAXCONN_MEM to change it)
// holds.
func TestConnectionsHeldIn256M(t *testing.T) {
	max, _ := strconv.Atoi(os.Getenv("GOVIRTIO_MAXCONN"))
	if max == 0 {
		t.Skip("set GOVIRTIO_MAXCONN=N to measure")
	}
	mem := os.Getenv("GOVIRTIO_MAXCONN_MEM")
	if mem == "" {
		mem = "256M"
	}
	s := bootStdnet(t, mem)
	conns := holdConnections(t, s.pong, max)
	t.Logf("%d connections held open; guest: %s", len(conns), strings.TrimSpace(get(t, s.base+"/open")))
	for _, c := range conns {
		c.Close()
	}
}
