package main

import (
	"io"
	"net"
	"testing"
	"time"
)

// serve runs handle for every connection to a fresh loopback listener and
// returns its address. The listener closes when the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// zeroSource sends zeros until the peer goes away.
func zeroSource(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// discardSink reads until end of file, then closes.
func discardSink(c net.Conn) { io.Copy(io.Discard, c) }

// silent accepts and holds the connection without reading or writing.
func silent(c net.Conn) { time.Sleep(2 * time.Second) }

// chatty discards what it reads but also writes a greeting.
func chatty(c net.Conn) {
	c.Write([]byte("hello"))
	io.Copy(io.Discard, c)
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(net.Conn)
		wantErr bool
	}{
		{name: "a sending source answers", handle: zeroSource},
		{name: "a listener that sends nothing does not answer", handle: silent, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.handle)
			err := probe(addr, 300*time.Millisecond)
			if (err != nil) != tt.wantErr {
				t.Fatalf("probe: err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestProbeClosedPortFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := probe(addr, 300*time.Millisecond); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}

func TestReceive(t *testing.T) {
	tests := []struct {
		name      string
		handle    func(net.Conn)
		wantBytes bool
		wantErr   bool
	}{
		{name: "a zero source is counted until the deadline", handle: zeroSource, wantBytes: true},
		{name: "a source that never sends is an error", handle: silent, wantErr: true},
		{name: "a source that closes early is an error", handle: func(c net.Conn) { c.Write(make([]byte, 1000)) }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := 200 * time.Millisecond
			r, err := receive(serve(t, tt.handle), d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("receive: err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantBytes && (r.Bytes == 0 || r.Elapsed < d/2) {
				t.Fatalf("receive: %d bytes in %v, want some bytes over about %v", r.Bytes, r.Elapsed, d)
			}
		})
	}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(net.Conn)
		wantErr bool
	}{
		{name: "a sink that closes at end of file ends the measurement", handle: discardSink},
		{name: "a sink that never closes is an error after the drain time", handle: func(c net.Conn) { io.CopyN(io.Discard, c, 1<<40); time.Sleep(2 * time.Second) }, wantErr: true},
		{name: "a sink that sends data is an error", handle: chatty, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := 200 * time.Millisecond
			r, err := send(serve(t, tt.handle), d, 300*time.Millisecond)
			if (err != nil) != tt.wantErr {
				t.Fatalf("send: err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (r.Bytes == 0 || r.Elapsed < d) {
				t.Fatalf("send: %d bytes in %v, want some bytes over at least %v", r.Bytes, r.Elapsed, d)
			}
		})
	}
}

func TestMBps(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want float64
	}{
		{name: "ten million bytes in two seconds is five MB/s", r: Result{Bytes: 10e6, Elapsed: 2 * time.Second}, want: 5},
		{name: "no elapsed time is zero, not infinity", r: Result{Bytes: 10}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.MBps(); got != tt.want {
				t.Fatalf("MBps() = %v, want %v", got, tt.want)
			}
		})
	}
}
