// Command httpd serves HTTP from bare metal: net/http over a gVisor TCP
// listener on the virtio-net driver.
//
//	GET  /             the driver's negotiated features and link state
//	GET  /debug/vars   expvar: the driver's counters under "virtionet", the
//	                   kernel's under "kernel", the network's under "network"
//	GET  /bytes?n=N    N bytes of a repeating pattern
//	POST /sha256       the hex SHA-256 of the request body
//	GET  /debug/pprof/ net/http/pprof: CPU profiles (profile?seconds=N),
//	                   heap, goroutines, execution traces
//
//	POST /debug/inject-tx-fault
//	                   only with debug.inject=1 on the command line: posts a
//	                   malformed TX chain, which makes the device ask for a
//	                   reset (a test of the driver's recovery)
//
// The kernel command line configures it: ip=, gw=, dns= (else DHCP),
// port=N (default 80) and debug.inject=1.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"expvar"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/govirtio/govirtio/driver/virtionet"
	"github.com/govirtio/govirtio/network"
	"github.com/govirtio/govirtio/runtime/kernel"
)

func main() {
	log.SetFlags(0)
	start := time.Now()
	n, err := network.StartFromArgs(context.Background(), os.Args[1:], log.Printf)
	if err != nil {
		log.Fatalf("httpd: %v", err)
	}
	port, inject := 80, false
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "port="); ok {
			if port, err = strconv.Atoi(v); err != nil {
				log.Fatalf("httpd: port=%s: %v", v, err)
			}
		}
		inject = inject || a == "debug.inject=1"
	}
	ln, err := n.ListenTCP(uint16(port))
	if err != nil {
		log.Fatalf("httpd: %v", err)
	}
	expvar.Publish("virtionet", expvar.Func(func() any { return n.Device.Stats() }))
	expvar.Publish("transport", expvar.Func(func() any { return n.TransportStats() }))
	expvar.Publish("network", expvar.Func(func() any {
		return map[string]any{"Address": n.CurrentAddress().String(), "LeaseRenewals": n.LeaseRenewals(),
			"CongestionRestarts": n.CongestionRestarts(), "AcceptWaits": n.AcceptWaits(),
			"TCPTimeouts": n.Stack.Stats().TCP.Timeouts.Value()}
	}))
	if n.DelayedACK != nil {
		expvar.Publish("delayedack", expvar.Func(func() any { return n.DelayedACK.Stats() }))
	}
	expvar.Publish("kernel", expvar.Func(func() any {
		s, err := kernel.ReadStats()
		if err != nil {
			return err.Error()
		}
		return s
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "govirtio httpd\ndevice %s\ninterface %s, interrupts %s\nfeatures %s\nMTU %d, MAC %s, link %s\naddress %s\n",
			n.Where(), map[bool]string{true: "legacy", false: "modern"}[n.Legacy()], n.InterruptMode(),
			virtionet.FeatureString(n.Device.Features()), n.Device.MTU(), n.Device.LinkAddress(),
			map[bool]string{true: "up", false: "down"}[n.Device.LinkUp()], n.Address)
	})
	mux.Handle("GET /debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || size < 0 {
			http.Error(w, "n must be a byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		io.CopyN(w, &pattern{}, size)
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, hex.EncodeToString(h.Sum(nil)))
	})
	if inject {
		mux.HandleFunc("POST /debug/inject-tx-fault", func(w http.ResponseWriter, r *http.Request) {
			if err := n.Device.InjectTxFault(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "malformed TX chain posted")
		})
	}
	log.Printf("httpd: serving on %s port %d (%v after boot)", n.Address.Addr(), port, time.Since(start).Round(time.Millisecond))
	log.Fatal(http.Serve(ln, mux))
}

// pattern is an endless reader of byte i = i mod 251 (a prime, so that it
// does not line up with powers of two and a misplaced chunk shows).
type pattern struct{ off int }

var patternBlock = func() []byte {
	b := make([]byte, 251*64)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

func (r *pattern) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], patternBlock[r.off%251:])
		n += c
		r.off += c
	}
	return n, nil
}
