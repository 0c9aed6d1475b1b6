package main

import (
	"io"
	"net"
	"testing"
	"time"
)

// echo writes back what it reads, like examples/throughput's port 7.
func echo(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestRequestResponse(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(net.Conn)
		wantErr bool
	}{
		{name: "an echo service completes transactions until the deadline", handle: echo},
		{name: "a service that never answers is an error", handle: func(c net.Conn) { io.Copy(io.Discard, c) }, wantErr: true},
		{name: "a service that answers with another byte is an error", handle: func(c net.Conn) {
			var b [1]byte
			for {
				if _, err := c.Read(b[:]); err != nil {
					return
				}
				b[0]++
				c.Write(b[:])
			}
		}, wantErr: true},
		{name: "a service that closes is an error", handle: func(c net.Conn) {}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := 200 * time.Millisecond
			r, err := requestResponse(serve(t, tt.handle), d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("requestResponse: err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			// The last transaction may finish a little after the deadline
			// on a loaded machine.
			if r.Transactions() < 10 || r.Elapsed <= 0 || r.Elapsed > d+time.Second {
				t.Fatalf("requestResponse: %d transactions in %v, want many in about %v", r.Transactions(), r.Elapsed, d)
			}
			if p50, p99 := r.Percentile(50), r.Percentile(99); p50 <= 0 || p99 < p50 {
				t.Fatalf("requestResponse: p50 %v, p99 %v, want 0 < p50 <= p99", p50, p99)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		name      string
		latencies []time.Duration
		p         float64
		want      time.Duration
	}{
		{name: "no transactions is zero", latencies: nil, p: 50, want: 0},
		{name: "one transaction is every percentile", latencies: ms(7), p: 99, want: 7 * time.Millisecond},
		{name: "the median of an odd count is the middle one, whatever the order", latencies: ms(5, 1, 3), p: 50, want: 3 * time.Millisecond},
		{name: "the median of an even count is the lower middle one", latencies: ms(4, 1, 3, 2), p: 50, want: 2 * time.Millisecond},
		{name: "p99 of 100 is the 99th smallest", latencies: ms(seq(100)...), p: 99, want: 99 * time.Millisecond},
		{name: "p99 of 10 is the largest", latencies: ms(seq(10)...), p: 99, want: 10 * time.Millisecond},
		{name: "p100 is the largest", latencies: ms(2, 9, 4), p: 100, want: 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RRResult{Latencies: tt.latencies}
			if got := r.Percentile(tt.p); got != tt.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

// seq returns 1, 2, ..., n.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestRate(t *testing.T) {
	tests := []struct {
		name string
		r    RRResult
		want float64
	}{
		{name: "four transactions in two seconds is two per second", r: RRResult{Latencies: make([]time.Duration, 4), Elapsed: 2 * time.Second}, want: 2},
		{name: "no elapsed time is zero, not infinity", r: RRResult{Latencies: make([]time.Duration, 1)}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Rate(); got != tt.want {
				t.Fatalf("Rate() = %v, want %v", got, tt.want)
			}
		})
	}
}
