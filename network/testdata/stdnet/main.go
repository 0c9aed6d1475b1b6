// Command stdnet is an ordinary Go program on the standard library's net
// and net/http: it links the kernel and network/auto and never imports
// package network. The boot test (stdnet_test.go) drives it from the host.
//
//	:80  HTTP: GET / ("stdnet ok"), GET /bytes?n=N (byte i is i mod 251),
//	     POST /sha256 (hex SHA-256 of the body), GET /open (TCP
//	     connections open on :81 now, and most at once)
//	:81  TCP: each line is answered with "pong LINE"; "bye" closes
//	:7   UDP echo
//
// At start it dials a closed port of the host (10.0.2.2:1) and prints
// whether the error is ECONNREFUSED as a *net.OpError.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"

	_ "github.com/govirtio/govirtio/network/auto"
	_ "github.com/govirtio/govirtio/runtime/kernel"
)

var open struct {
	sync.Mutex
	now, most int
}

func main() {
	log.SetFlags(0)
	_, err := net.Dial("tcp", "10.0.2.2:1")
	var op *net.OpError
	log.Printf("stdnet: dial closed port: %v; *net.OpError %v, ECONNREFUSED %v",
		err, errors.As(err, &op), errors.Is(err, syscall.ECONNREFUSED))

	pc, err := net.ListenPacket("udp", ":7")
	if err != nil {
		log.Fatalf("stdnet: %v", err)
	}
	go echoUDP(pc)

	ln, err := net.Listen("tcp", ":81")
	if err != nil {
		log.Fatalf("stdnet: %v", err)
	}
	go pong(ln)

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "stdnet ok") })
	http.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 251*256)
		for i := range buf {
			buf[i] = byte(i % 251)
		}
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	http.HandleFunc("/sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, hex.EncodeToString(h.Sum(nil)))
	})
	http.HandleFunc("/open", func(w http.ResponseWriter, r *http.Request) {
		open.Lock()
		defer open.Unlock()
		fmt.Fprintf(w, "open %d most %d\n", open.now, open.most)
	})
	log.Printf("stdnet: serving")
	log.Fatal(http.ListenAndServe(":80", nil))
}

func echoUDP(pc net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatalf("stdnet: udp: %v", err)
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			log.Printf("stdnet: udp reply: %v", err)
		}
	}
}

func pong(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Printf("stdnet: accept: %v", err)
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			open.Lock()
			open.now++
			open.most = max(open.most, open.now)
			open.Unlock()
			defer func() {
				open.Lock()
				open.now--
				open.Unlock()
			}()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, "pong "+line); err != nil || line == "bye\n" {
					return
				}
			}
		}()
	}
}
