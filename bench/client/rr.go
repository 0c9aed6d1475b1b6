package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"time"
)

// RRResult is one request/response measurement.
type RRResult struct {
	// Latencies holds the round trip of every completed transaction, in
	// the order they ran.
	Latencies []time.Duration
	// Elapsed is the measured interval, from the first request to the end
	// of the last completed transaction.
	Elapsed time.Duration
}

// Transactions is the number of completed transactions.
func (r RRResult) Transactions() int { return len(r.Latencies) }

// Rate returns the completed transactions per second.
func (r RRResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p <= 100) of the latencies
// by the nearest-rank method: the smallest latency that at least p% of
// the transactions did not exceed. It returns 0 when there are none.
func (r RRResult) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	sorted := slices.Clone(r.Latencies)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// requestResponse measures request/response over one connection to the
// echo service at addr for d: it writes one byte, waits for it to come
// back, and repeats. A transaction cut by the end of d does not count.
// The byte changes from one transaction to the next, so an echo of a stale
// byte shows.
func requestResponse(addr string, d time.Duration) (RRResult, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return RRResult{}, fmt.Errorf("request/response with %s: %w", addr, err)
	}
	defer c.Close()
	// Go's TCP connections have Nagle's algorithm off already; say so,
	// since a delayed one-byte write would measure the delay.
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			return RRResult{}, fmt.Errorf("request/response with %s: %w", addr, err)
		}
	}
	start := time.Now()
	if err := c.SetDeadline(start.Add(d)); err != nil {
		return RRResult{}, fmt.Errorf("request/response with %s: %w", addr, err)
	}
	var r RRResult
	var req, resp [1]byte
	for i := 0; ; i++ {
		req[0] = byte(i)
		t := time.Now()
		_, err := c.Write(req[:])
		if err == nil {
			_, err = io.ReadFull(c, resp[:])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return r, fmt.Errorf("request/response with %s after %d transactions: %w", addr, len(r.Latencies), err)
		}
		if resp != req {
			return r, fmt.Errorf("request/response with %s: sent %#x, got %#x back", addr, req[0], resp[0])
		}
		now := time.Now()
		r.Latencies = append(r.Latencies, now.Sub(t))
		r.Elapsed = now.Sub(start)
	}
	if len(r.Latencies) == 0 {
		return r, fmt.Errorf("request/response with %s: no answer within %v", addr, d)
	}
	return r, nil
}
