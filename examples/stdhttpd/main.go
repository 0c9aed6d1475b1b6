// Command stdhttpd is a plain Go HTTP server: it imports nothing of
// govirtio, and the same source runs on Linux (go run . -addr :8080, from
// this directory) and as an image, built with
//
//	go run ./cmd/mkimage -files examples/stdhttpd/static -o stdhttpd.img ./examples/stdhttpd
//
// (make run EXAMPLE=stdhttpd does this and boots it). It serves the files
// under -root (default "static": in the image, the directory packed at
// /static, the working directory being the root) with http.FileServer,
// plus GET /bytes?n=N (N pseudo-random bytes) and POST /sha256 (the
// SHA-256 of the body) for transfer tests.
//
// In an image it reaches the network through the kernel's socket system
// calls and the network's automatic bring-up (issue 10); where those are
// missing, net.Listen fails and stdhttpd says so and exits. With
// -selftest it serves a few requests to itself through the handler, with
// no socket, prints them and exits: how its files are checked without a
// network.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", ":80", "listen on `address`")
	root := flag.String("root", "static", "serve the files under `dir`")
	selftest := flag.Bool("selftest", false, "serve a few requests through the handler, print them and exit")
	flag.Parse()

	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(*root)))
	mux.HandleFunc("GET /bytes", serveBytes)
	mux.HandleFunc("POST /sha256", serveSHA256)

	if *selftest {
		os.Exit(selfTest(mux))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("stdhttpd: %v", err)
	}
	log.Printf("stdhttpd: serving %s on %s", *root, ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

// serveBytes writes n pseudo-random bytes (GET /bytes?n=N, N at most 1 GiB).
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n > 1<<30 {
		http.Error(w, "n: a byte count up to 1 GiB", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	src := rand.NewChaCha8([32]byte{})
	buf := make([]byte, min(n, 64<<10)) // not 64 KiB for every small answer
	for n > 0 {
		chunk := buf[:min(n, int64(len(buf)))]
		src.Read(chunk)
		if _, err := w.Write(chunk); err != nil {
			return
		}
		n -= int64(len(chunk))
	}
}

// serveSHA256 answers with the hex SHA-256 of the request body.
func serveSHA256(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %d\n", hex.EncodeToString(h.Sum(nil)), n)
}

// selfTest sends h a few requests in-process and prints what came back,
// one line each; it returns the exit status (0 when all were as expected).
func selfTest(h http.Handler) int {
	status := 0
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200},
		{"GET", "/docs/", 200},
		{"GET", "/docs/readme.txt", 200},
		{"GET", "/missing", 404},
		{"GET", "/bytes?n=1000", 200},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		body := w.Body.Bytes()
		fmt.Printf("stdhttpd: %s %s: %d, %d bytes, %s\n", c.method, c.path, w.Code, len(body), w.Header().Get("Content-Type"))
		if w.Code != c.want {
			status = 1
		}
	}
	if status == 0 {
		fmt.Println("stdhttpd: selftest ok")
	} else {
		fmt.Println("stdhttpd: selftest FAIL")
	}
	return status
}
