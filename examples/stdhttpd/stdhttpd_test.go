package main

import (
	"net/http"
	"os"
	"strings"
	"testing"

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
