// Command throughput is a network throughput server for measuring the
// driver with standard tools: TCP port 9 discards whatever it receives
// (RFC 863; the guest receives) and TCP port 19 sends zeros until the
// client closes (like chargen, RFC 864, without the characters; the guest
// transmits). `nc 10.0.3.15 19 | pv > /dev/null` or any socket client
// measures it. The kernel command line configures the address like httpd.
package main

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/govirtio/govirtio/network"
	_ "github.com/govirtio/govirtio/runtime/kernel"
)

const (
	discardPort = 9
	sourcePort  = 19
)

func main() {
	log.SetFlags(0)
	n, err := network.StartFromArgs(context.Background(), os.Args[1:], log.Printf)
	if err != nil {
		log.Fatalf("throughput: %v", err)
	}
	discard, err := n.ListenTCP(discardPort)
	if err != nil {
		log.Fatalf("throughput: %v", err)
	}
	source, err := n.ListenTCP(sourcePort)
	if err != nil {
		log.Fatalf("throughput: %v", err)
	}
	log.Printf("throughput: discard on port %d, zero source on port %d, at %s", discardPort, sourcePort, n.Address.Addr())
	report := func(what string, start time.Time, bytes int64) {
		d := time.Since(start)
		tcp := n.Stack.Stats().TCP
		log.Printf("throughput: %s %d bytes in %v (%.1f MB/s); tcp retransmits %d timeouts %d fast %d; driver %+v", what, bytes, d.Round(time.Millisecond),
			float64(bytes)/1e6/d.Seconds(), tcp.Retransmits.Value(), tcp.Timeouts.Value(), tcp.FastRetransmit.Value(), n.Device.Stats())
	}
	go serve(source, func(c net.Conn) {
		zeros := make([]byte, 256<<10)
		start, sent := time.Now(), int64(0)
		defer func() { report("sent", start, sent) }()
		for {
			m, err := c.Write(zeros)
			sent += int64(m)
			if err != nil {
				return
			}
		}
	})
	serve(discard, func(c net.Conn) {
		start := time.Now()
		got, _ := io.Copy(io.Discard, c)
		report("received", start, got)
	})
}

func serve(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("throughput: accept: %v", err)
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}
