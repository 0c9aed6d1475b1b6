// Command throughput is the server that bench/linux-compare.sh measures. It
// is one program built two ways, so that a govirtio guest and a Linux guest
// run the same handlers and differ only in what is under them:
//
//	TCP 7    echo: writes back whatever arrives, as it arrives
//	TCP 9    discard (RFC 863): reads and drops everything; the guest receives
//	TCP 19   zero source (chargen, RFC 864, without the characters): sends
//	         zeros until the client closes; the guest transmits
//	TCP 80   HTTP:
//	           GET  /           a small fixed body ("govirtio bench")
//	           GET  /bytes?n=N  N bytes of a repeating pattern
//	           POST /sha256     the hex SHA-256 of the request body
//	           GET  /cpu        the guest's CPU time since boot, busy and
//	                            in all, in ns of its clock:
//	                            "busy_ns B total_ns T"
//
// Built as it is, it is a govirtio image (make image EXAMPLE=throughput):
// listen_govirtio.go links the kernel in and listens on the gVisor stack
// that network.StartFromArgs brings up on the virtio-net device; the kernel
// command line configures the address like httpd's (ip=, gw=, dns=, else
// DHCP).
//
// Built with the hostnet tag, it is an ordinary static Linux program that
// listens with package net on every address of the machine it runs on
// (listen_hostnet.go):
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -tags hostnet ./examples/throughput
//
// bench/linux-compare.sh puts that binary in its Linux guest's initramfs.
//
// GET /cpu counts everything the guest's CPU did, so that two readings
// around a measurement give what the work cost the guest, whatever part of
// it (program, network stack, driver, interrupts) did it: on govirtio the
// kernel's accounting (kernel.ReadStats: all but the idle thread's time),
// on Linux /proc/stat (user, nice, system, irq, softirq and steal time;
// idle and iowait make up the rest). Linux samples its busy times at the
// scheduler tick, so a reading over a short interval is only as precise as
// a few ticks.
//
// Every connection to ports 9 and 19 logs one line when it ends: the bytes
// it moved, the rate, and the platform's TCP and driver counters.
// `nc 10.0.3.15 19 | pv >/dev/null` or any socket client measures it.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// The services' TCP ports.
const (
	echoPort    = 7
	discardPort = 9
	sourcePort  = 19
	httpPort    = 80
)

const (
	// streamBufSize is the read buffer of the discard service and the
	// write size of the zero source: large, so that neither guest is held
	// back by small socket calls on a bulk transfer.
	streamBufSize = 256 << 10
	// echoBufSize is the echo service's read buffer: request/response
	// traffic is small, and the echo answers each read as it comes.
	echoBufSize = 4 << 10
)

// rootBody is what GET / answers, the same on both platforms.
const rootBody = "govirtio bench\n"

// platform is the network the services listen on. listen_govirtio.go and
// listen_hostnet.go each provide one through startPlatform.
type platform interface {
	// Listen listens on TCP port of every address.
	Listen(port uint16) (net.Listener, error)
	// Address is the address the services are reached at, for the log.
	Address() string
	// Counters summarises the TCP and device counters, for the
	// per-connection reports.
	Counters() string
	// CPUTime is the time the guest's CPU was busy since boot, and the
	// time in all: everything the CPU ran but the idle loop, the kernel's
	// interrupts and network processing included.
	CPUTime() (busy, total time.Duration, err error)
}

func main() {
	log.SetFlags(0)
	p, err := startPlatform()
	if err != nil {
		log.Fatalf("throughput: %v", err)
	}
	// Every port listens before any serves, so that a client that finds
	// one service answering finds them all.
	listen := func(port uint16) net.Listener {
		ln, err := p.Listen(port)
		if err != nil {
			log.Fatalf("throughput: %v", err)
		}
		return ln
	}
	echo, discard, source, web := listen(echoPort), listen(discardPort), listen(sourcePort), listen(httpPort)
	log.Printf("throughput: echo on port %d, discard on port %d, zero source on port %d, HTTP on port %d, at %s",
		echoPort, discardPort, sourcePort, httpPort, p.Address())

	report := func(what string, start time.Time, bytes int64) {
		d := time.Since(start)
		log.Printf("throughput: %s %d bytes in %v (%.1f MB/s); %s", what, bytes, d.Round(time.Millisecond),
			float64(bytes)/1e6/d.Seconds(), p.Counters())
	}
	go serve(echo, echoConn)
	go serve(discard, func(c net.Conn) {
		start := time.Now()
		got := discardConn(c)
		c.Close() // before the report: the client's clock stops at the close
		report("received", start, got)
	})
	go serve(source, func(c net.Conn) {
		start := time.Now()
		sent := sourceConn(c)
		c.Close()
		report("sent", start, sent)
	})
	log.Fatalf("throughput: HTTP: %v", http.Serve(web, handler(p)))
}

// serve runs handle on its own goroutine for every connection ln accepts,
// and closes the connection when handle returns.
func serve(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("throughput: accept: %v", err)
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// echoConn writes back what c receives, one read at a time, until c ends.
// It copies through its own buffer: io.Copy between two TCP connections
// splices in the kernel on Linux, which would leave the program out of the
// measurement on one side only.
func echoConn(c net.Conn) {
	buf := make([]byte, echoBufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// discardConn reads c until it ends and returns the byte count. Like
// echoConn it reads into its own buffer, so that the read size is the same
// on both platforms (io.Copy to io.Discard would read 8 KiB at a time).
func discardConn(c net.Conn) int64 {
	buf := make([]byte, streamBufSize)
	var got int64
	for {
		n, err := c.Read(buf)
		got += int64(n)
		if err != nil {
			return got
		}
	}
}

// sourceConn writes zeros to c until a write fails (the client closed) and
// returns the byte count.
func sourceConn(c net.Conn) int64 {
	zeros := make([]byte, streamBufSize)
	var sent int64
	for {
		n, err := c.Write(zeros)
		sent += int64(n)
		if err != nil {
			return sent
		}
	}
}

// handler is the HTTP service on port 80; /cpu reads p's CPU time.
func handler(p platform) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(rootBody)))
		io.WriteString(w, rootBody)
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || size < 0 {
			http.Error(w, "n must be a byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		// io.CopyN writes 32 KiB at a time into the ResponseWriter.
		io.CopyN(w, &pattern{}, size)
	})
	mux.HandleFunc("GET /cpu", func(w http.ResponseWriter, r *http.Request) {
		busy, total, err := p.CPUTime()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "busy_ns %d total_ns %d\n", busy.Nanoseconds(), total.Nanoseconds())
	})
	// The CPU profiler works on both platforms: go tool pprof reads
	// /debug/pprof/profile?seconds=N while a benchmark runs.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, hex.EncodeToString(h.Sum(nil)))
	})
	return mux
}

// pattern is an endless reader of byte i = i mod 251 (a prime, so that it
// does not line up with powers of two and a misplaced chunk shows), the
// same pattern as httpd's /bytes.
type pattern struct{ off int }

// patternBlock holds whole periods of the pattern, to copy from.
var patternBlock = func() []byte {
	b := make([]byte, 251*64)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

func (r *pattern) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], patternBlock[r.off%251:])
		n += c
		r.off += c
	}
	return n, nil
}
