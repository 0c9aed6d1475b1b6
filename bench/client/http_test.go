package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// benchServer serves /bytes and /sha256 like examples/throughput, with
// body changing what /bytes sends and hash what /sha256 answers.
func benchServer(t *testing.T, body func(w io.Writer, n int64), hash func(sum []byte) string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		body(w, n)
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, hash(h.Sum(nil)))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

// patternBody sends n bytes of the pattern, as the guests do.
func patternBody(w io.Writer, n int64) { io.CopyN(w, &pattern{}, n) }

// hexHash answers the right hash.
func hexHash(sum []byte) string { return hex.EncodeToString(sum) }

func TestDownload(t *testing.T) {
	tests := []struct {
		name    string
		body    func(io.Writer, int64)
		size    int64
		wantErr bool
	}{
		{name: "the pattern at the length asked for is a transfer", body: patternBody, size: 5<<20 + 17},
		{name: "an empty transfer is a transfer", body: patternBody, size: 0},
		{name: "a short body is an error", body: func(w io.Writer, n int64) { patternBody(w, n-1) }, size: 1 << 20, wantErr: true},
		{name: "a long body is an error", body: func(w io.Writer, n int64) { patternBody(w, n+1) }, size: 1 << 20, wantErr: true},
		{name: "zeros instead of the pattern are an error", body: func(w io.Writer, n int64) { w.Write(make([]byte, n)) }, size: 1000, wantErr: true},
		{name: "a missing page is an error", body: func(w io.Writer, n int64) { w.(http.ResponseWriter).WriteHeader(http.StatusNotFound) }, size: 10, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := download(benchServer(t, tt.body, hexHash), tt.size, 10*time.Second)
			if (err != nil) != tt.wantErr {
				t.Fatalf("download: err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (r.Bytes != tt.size || r.Elapsed <= 0) {
				t.Fatalf("download: %d bytes in %v, want %d bytes", r.Bytes, r.Elapsed, tt.size)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	tests := []struct {
		name    string
		hash    func([]byte) string
		size    int64
		wantErr bool
	}{
		{name: "the content's hash back is a transfer", hash: hexHash, size: 5<<20 + 17},
		{name: "an empty upload is a transfer", hash: hexHash, size: 0},
		{name: "another hash is an error", hash: func(sum []byte) string { sum[0]++; return hex.EncodeToString(sum) }, size: 1000, wantErr: true},
		{name: "an empty answer is an error", hash: func([]byte) string { return "" }, size: 1000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := upload(benchServer(t, patternBody, tt.hash), tt.size, 10*time.Second)
			if (err != nil) != tt.wantErr {
				t.Fatalf("upload: err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (r.Bytes != tt.size || r.Elapsed <= 0) {
				t.Fatalf("upload: %d bytes in %v, want %d bytes", r.Bytes, r.Elapsed, tt.size)
			}
		})
	}
}

func TestPatternChecker(t *testing.T) {
	whole := make([]byte, 3*patternPeriod+5)
	io.ReadFull(&pattern{}, whole)
	tests := []struct {
		name    string
		writes  [][]byte
		wantErr bool
	}{
		{name: "the pattern in one write passes", writes: [][]byte{whole}},
		{name: "the pattern cut anywhere passes", writes: [][]byte{whole[:1], whole[1:250], whole[250:252], whole[252:]}},
		{name: "a repeated chunk fails", writes: [][]byte{whole[:100], whole[:100]}, wantErr: true},
		{name: "one wrong byte fails", writes: [][]byte{whole[:300], {0xff}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c patternChecker
			var err error
			for _, w := range tt.writes {
				if _, err = c.Write(w); err != nil {
					break
				}
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("patternChecker: err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseDir(t *testing.T) {
	tests := []struct {
		dir     string
		tx, rx  bool
		wantErr bool
	}{
		{dir: "both", tx: true, rx: true},
		{dir: "tx", tx: true},
		{dir: "rx", rx: true},
		{dir: "up", wantErr: true},
		{dir: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run("-dir "+tt.dir, func(t *testing.T) {
			tx, rx, err := parseDir(tt.dir)
			if (err != nil) != tt.wantErr || tx != tt.tx || rx != tt.rx {
				t.Fatalf("parseDir(%q) = %v, %v, %v; want %v, %v, error %v", tt.dir, tx, rx, err, tt.tx, tt.rx, tt.wantErr)
			}
		})
	}
}
