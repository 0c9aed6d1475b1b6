package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	boottest.Cleanup()
	os.Exit(code)
}

// On the host, from this directory, the self-test serves ./static.
func TestSelfTestOnTheHost(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir("static")))
	mux.HandleFunc("GET /bytes", serveBytes)
	if status := selfTest(mux); status != 0 {
		t.Errorf("selftest status %d", status)
	}
}

// Built by cmd/mkimage with its static directory packed, unmodified
// stdhttpd serves the packed files from the image (without a network:
// -selftest sends the requests through the handler).
func TestBootServesPackedFiles(t *testing.T) {
	img := boottest.BuildWithMkimage(t, "examples/stdhttpd", "-files", "examples/stdhttpd/static")
	out, status := boottest.Boot(t, img, "-m", "128M", "-append", "-selftest")
	if status != 0 || boottest.LastLine(out) != "stdhttpd: selftest ok" {
		t.Errorf("exit status %d, last line %q; want 0 and %q", status, boottest.LastLine(out), "stdhttpd: selftest ok")
	}
	for _, want := range []string{"GET /: 200", "GET /docs/readme.txt: 200, 142 bytes, text/plain", "GET /missing: 404"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
}

// Built by cmd/mkimage, unmodified stdhttpd serves over the network: its
// net.Listen and the connections reach netstack through the kernel's
// socket system calls, the network brought up by network/auto. A packed
// file, then 16 MiB each way checked with SHA-256.
func TestBootServesOverTheNetwork(t *testing.T) {
	img := boottest.BuildWithMkimage(t, "examples/stdhttpd", "-files", "examples/stdhttpd/static")
	port := boottest.FreePort(t)
	g := boottest.Start(t, img, "-m", "128M", "-net", "user", "-fwd", fmt.Sprint(port))
	g.WaitFor(`stdhttpd: serving`, 3*time.Minute)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := http.Client{Timeout: 3 * time.Minute}
	fetch := func(req *http.Request) []byte {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d, %d bytes, %v", req.Method, req.URL, resp.StatusCode, len(body), err)
		}
		return body
	}
	get, _ := http.NewRequest("GET", base+"/docs/readme.txt", nil)
	want, err := os.ReadFile("static/docs/readme.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := fetch(get); !bytes.Equal(got, want) {
		t.Errorf("GET /docs/readme.txt: %q, want %q", got, want)
	}

	const n = 16 << 20
	local := make([]byte, n)
	rand.NewChaCha8([32]byte{}).Read(local) // what /bytes sends
	sum := sha256.Sum256(local)
	down, _ := http.NewRequest("GET", fmt.Sprintf("%s/bytes?n=%d", base, n), nil)
	if got := fetch(down); sha256.Sum256(got) != sum {
		t.Errorf("GET /bytes: %d bytes whose SHA-256 differs from the stream's", len(got))
	}
	up, _ := http.NewRequest("POST", base+"/sha256", bytes.NewReader(local))
	if got, want := strings.TrimSpace(string(fetch(up))), fmt.Sprintf("%s %d", hex.EncodeToString(sum[:]), n); got != want {
		t.Errorf("POST /sha256 of 16 MiB answered %q, want %q", got, want)
	}
}
