package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Result is one measured direction.
type Result struct {
	// Bytes is the number of payload bytes that crossed the connection
	// during Elapsed.
	Bytes int64
	// Elapsed is the measured interval (see receive and send for where it
	// starts and ends).
	Elapsed time.Duration
}

// MBps returns the throughput in 10^6 bytes per second.
func (r Result) MBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6
}

// bufSize is the size of the client's read and write buffer: large enough
// that the client's system calls are never the bottleneck against a guest
// running under TCG.
const bufSize = 256 << 10

// probe connects to the zero source at addr and waits for its first byte,
// giving up after timeout. A listening socket is not enough: the guest must
// be sending, which is what the measurement needs.
func probe(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("probe %s: reading the first byte: %w", addr, err)
	}
	return nil
}

// receive reads from the zero source at addr for d and returns what
// arrived. The clock starts at the first byte, so the guest's accept and
// the connection setup are not counted, and stops at the deadline.
func receive(addr string, d time.Duration) (Result, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return Result{}, fmt.Errorf("receive from %s: %w", addr, err)
	}
	defer c.Close()
	buf := make([]byte, bufSize)
	// The guest may take a moment to start sending; allow the same time as
	// the measurement for the first byte.
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return Result{}, fmt.Errorf("receive from %s: %w", addr, err)
	}
	if _, err := c.Read(buf); err != nil {
		return Result{}, fmt.Errorf("receive from %s: waiting for the first byte: %w", addr, err)
	}
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(d)); err != nil {
		return Result{}, fmt.Errorf("receive from %s: %w", addr, err)
	}
	var r Result
	for {
		n, err := c.Read(buf)
		r.Bytes += int64(n)
		if err != nil {
			r.Elapsed = time.Since(start)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return r, nil
			}
			return r, fmt.Errorf("receive from %s after %d bytes: %w", addr, r.Bytes, err)
		}
	}
}

// send writes zeros to the sink at addr for d, then half-closes the
// connection and waits (up to drain) for the sink to close its side. The
// clock stops when the sink's close arrives, not when the writes stop:
// bytes accepted by the client's socket buffer but not yet delivered would
// otherwise count as received by the guest, which inflates the figure by
// several megabytes against a slow guest. The sink must therefore close the
// connection when it reads end of file, as both benchmarked guests do.
func send(addr string, d, drain time.Duration) (Result, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return Result{}, fmt.Errorf("send to %s: %w", addr, err)
	}
	c, ok := conn.(*net.TCPConn)
	if !ok {
		conn.Close()
		return Result{}, fmt.Errorf("send to %s: not a TCP connection (%T)", addr, conn)
	}
	defer c.Close()
	buf := make([]byte, bufSize)
	start := time.Now()
	if err := c.SetWriteDeadline(start.Add(d)); err != nil {
		return Result{}, fmt.Errorf("send to %s: %w", addr, err)
	}
	var r Result
	for {
		n, err := c.Write(buf)
		r.Bytes += int64(n)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		return r, fmt.Errorf("send to %s after %d bytes: %w", addr, r.Bytes, err)
	}
	if err := c.CloseWrite(); err != nil {
		return r, fmt.Errorf("send to %s: half-closing: %w", addr, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(drain)); err != nil {
		return r, fmt.Errorf("send to %s: %w", addr, err)
	}
	// The sink sends nothing; anything but end of file means it did not
	// take all the bytes.
	n, err := io.Copy(io.Discard, c)
	r.Elapsed = time.Since(start)
	switch {
	case err != nil:
		return r, fmt.Errorf("send to %s: waiting for the sink to close after %d bytes: %w", addr, r.Bytes, err)
	case n > 0:
		return r, fmt.Errorf("send to %s: the sink sent %d unexpected bytes", addr, n)
	}
	return r, nil
}
