//go:build !hostnet

package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/govirtio/govirtio/network"
	"github.com/govirtio/govirtio/runtime/kernel"
)

// govirtio is the image's platform: the gVisor stack on the virtio-net
// driver, configured from the kernel command line.
type govirtio struct{ n *network.Network }

// startPlatform brings the network up (ip=, gw=, dns= from the kernel
// command line, else DHCP).
func startPlatform() (platform, error) {
	n, err := network.StartFromArgs(context.Background(), os.Args[1:], log.Printf)
	if err != nil {
		return nil, err
	}
	return govirtio{n}, nil
}

func (g govirtio) Listen(port uint16) (net.Listener, error) { return g.n.ListenTCP(port) }

func (g govirtio) Address() string { return g.n.Address.Addr().String() }

func (g govirtio) Counters() string {
	tcp := g.n.Stack.Stats().TCP
	return fmt.Sprintf("tcp retransmits %d timeouts %d fast %d; driver %+v",
		tcp.Retransmits.Value(), tcp.Timeouts.Value(), tcp.FastRetransmit.Value(), g.n.Device.Stats())
}

// CPUTime reads the kernel's accounting: busy is all the time the CPU was
// not in the idle thread (the program, the driver and the kernel alike),
// total the time since boot, both at the same accounting point.
func (govirtio) CPUTime() (busy, total time.Duration, err error) {
	s, err := kernel.ReadStats()
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(s.Uptime - s.IdleTime), time.Duration(s.Uptime), nil
}
