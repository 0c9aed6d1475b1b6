package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// patternPeriod is the period of the HTTP transfers' content: byte i is
// i mod patternPeriod, as examples/throughput's (and httpd's) /bytes sends.
const patternPeriod = 251

// patternBlock holds whole periods of the pattern, to copy from.
var patternBlock = func() []byte {
	b := make([]byte, patternPeriod*64)
	for i := range b {
		b[i] = byte(i % patternPeriod)
	}
	return b
}()

// pattern is an endless reader of the transfers' content.
type pattern struct{ off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], patternBlock[p.off%patternPeriod:])
		n += c
		p.off += int64(c)
	}
	return n, nil
}

// patternChecker is a writer that checks that what it is given continues
// the pattern, and counts it.
type patternChecker struct{ off int64 }

func (p *patternChecker) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		want := patternBlock[p.off%patternPeriod:]
		c := min(len(want), len(b)-n)
		if !bytes.Equal(b[n:n+c], want[:c]) {
			for i := range c {
				if b[n+i] != want[i] {
					return n + i, fmt.Errorf("byte %d is %#x, want %#x", p.off+int64(i), b[n+i], want[i])
				}
			}
		}
		n += c
		p.off += int64(c)
	}
	return n, nil
}

// httpDo sends req on a fresh connection (no keep-alive, no compression:
// the bytes as they are), with timeout bounding the whole exchange, body
// included. The caller closes the response body.
func httpDo(req *http.Request, timeout time.Duration) (*http.Response, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	return c.Do(req)
}

// download fetches GET base/bytes?n=size, checks the length and the
// content, and returns the transfer. The clock runs from the request to the
// last byte of the body; timeout bounds it.
func download(base string, size int64, timeout time.Duration) (Result, error) {
	url := base + "/bytes?n=" + strconv.FormatInt(size, 10)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return Result{}, fmt.Errorf("download %s: %w", url, err)
	}
	start := time.Now()
	resp, err := httpDo(req, timeout)
	if err != nil {
		return Result{}, fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	var check patternChecker
	n, err := io.CopyBuffer(&check, resp.Body, make([]byte, bufSize))
	r := Result{Bytes: n, Elapsed: time.Since(start)}
	switch {
	case err != nil:
		return r, fmt.Errorf("download %s after %d bytes: %w", url, n, err)
	case n != size:
		return r, fmt.Errorf("download %s: got %d bytes, want %d", url, n, size)
	}
	return r, nil
}

// upload sends size bytes of the pattern with POST base/sha256, checks
// that the hash the server returns is the content's, and returns the
// transfer. The clock runs from the request to the end of the response
// (which the server sends once it has read the whole body); timeout bounds
// it.
func upload(base string, size int64, timeout time.Duration) (Result, error) {
	url := base + "/sha256"
	// The hash is computed before the clock starts.
	h := sha256.New()
	if _, err := io.CopyN(h, &pattern{}, size); err != nil {
		return Result{}, fmt.Errorf("upload %s: hashing the content: %w", url, err)
	}
	want := hex.EncodeToString(h.Sum(nil))

	req, err := http.NewRequest(http.MethodPost, url, io.LimitReader(&pattern{}, size))
	if err != nil {
		return Result{}, fmt.Errorf("upload %s: %w", url, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := httpDo(req, timeout)
	if err != nil {
		return Result{}, fmt.Errorf("upload %s: %w", url, err)
	}
	defer resp.Body.Close()
	// A hex SHA-256 and a newline; anything much longer is not one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	r := Result{Bytes: size, Elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("upload %s: reading the response: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("upload %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if got := strings.TrimSpace(string(body)); got != want {
		return r, fmt.Errorf("upload %s: the server's hash is %q, want %s", url, got, want)
	}
	return r, nil
}
