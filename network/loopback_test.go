package network

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// A network's stack reaches itself as Linux does, on 127.0.0.1, ::1 and
// its interface address, through the loopback NIC, after the interface's
// routes were installed, and none of it goes to the wire.
func TestTheStackReachesItselfAsLinuxDoes(t *testing.T) {
	s, err := newStack(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); s.Wait() })
	wire := channel.New(16, 1500, "")
	if err := s.CreateNIC(nicID, wire); err != nil {
		t.Fatal(err)
	}
	n := &Network{Stack: s, mem: newMemoryGauge()}
	if err := n.configure(netip.MustParsePrefix("10.0.2.15/24"), netip.MustParseAddr("10.0.2.2")); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1", "::1", "10.0.2.15"} {
		t.Run(addr, func(t *testing.T) {
			a := netip.MustParseAddr(addr)
			proto := ipv4.ProtocolNumber
			if a.Is6() {
				proto = ipv6.ProtocolNumber
			}
			fa := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: 7}
			l, err := gonet.ListenTCP(s, fa, proto)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err == nil {
					io.Copy(c, c)
					c.Close()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := gonet.DialContextTCP(ctx, s, fa, proto)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo: %q, %v", buf, err)
			}
		})
	}
	if wire.NumQueued() != 0 {
		t.Errorf("%d packets went to the wire", wire.NumQueued())
	}
}
