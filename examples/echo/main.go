// Command echo answers on TCP and UDP port 7 (RFC 862) with whatever it
// receives. The kernel command line configures it like httpd.
package main

import (
	"context"
	"io"
	"log"
	"net"
	"os"

	"github.com/govirtio/govirtio/network"
	_ "github.com/govirtio/govirtio/runtime/kernel"
)

const port = 7

func main() {
	log.SetFlags(0)
	n, err := network.StartFromArgs(context.Background(), os.Args[1:], log.Printf)
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
	udp, err := n.ListenUDP(port)
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			m, from, err := udp.ReadFrom(buf)
			if err != nil {
				log.Fatalf("echo: UDP: %v", err)
			}
			udp.WriteTo(buf[:m], from)
		}
	}()
	ln, err := n.ListenTCP(port)
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
	log.Printf("echo: TCP and UDP port %d on %s", port, n.Address.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("echo: accept: %v", err)
		}
		go func(c net.Conn) {
			defer c.Close()
			io.Copy(c, c)
		}(c)
	}
}
