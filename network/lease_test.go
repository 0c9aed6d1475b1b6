package network_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestDHCPLeaseIsRenewedAndRegained gives the guest 6-second DHCP leases
// from a server in the tap's namespace (this test binary, re-executed as
// TestDHCPServer) and checks that the guest renews them by unicast before
// they run out, and that after the server went away long enough for the
// lease to expire, the guest starts over and gets its address back.
func TestDHCPLeaseIsRenewedAndRegained(t *testing.T) {
	ns := boottest.TapNetns(t)
	startServer := func() (*exec.Cmd, <-chan string) {
		srv := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestDHCPServer$")
		srv.Env = append(os.Environ(), "GOVIRTIO_DHCP_SERVER=1")
		out, err := srv.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 100)
		go func() {
			s := bufio.NewScanner(out)
			for s.Scan() {
				lines <- s.Text()
			}
			close(lines)
		}()
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		return srv, lines
	}
	srv, lines := startServer()

	img := boottest.BuildImage(t, "examples/httpd")
	g := boottest.StartInNetns(t, ns, img, "-net", "tap", "-tap", "gvtap0")
	g.WaitFor(`network: DHCP lease 10.0.3.15/24 from 10.0.3.1 for 6s`, 3*time.Minute)
	// Renewals from the leased address (ciaddr set), at T1.
	g.WaitFor(`(?s)lease 10.0.3.15/24 renewed.*lease 10.0.3.15/24 renewed`, time.Minute)
	renewals := 0
	for len(lines) > 0 {
		if l := <-lines; strings.Contains(l, "REQUEST ciaddr=10.0.3.15 from 10.0.3.15:68") {
			renewals++
		}
	}
	if renewals < 2 {
		t.Errorf("the server saw %d renewals from the leased address", renewals)
	}

	// The server goes away: the lease runs out and the guest asks again.
	srv.Process.Kill()
	srv.Wait()
	g.WaitFor(`network: DHCP lease 10.0.3.15/24 lost`, time.Minute)
	startServer()
	g.WaitFor(`(?s)lease 10.0.3.15/24 lost.*network: DHCP lease 10.0.3.15/24 from 10.0.3.1 for 6s`, time.Minute)
}

// TestDHCPServer is the server half of TestDHCPLeaseIsRenewedAndRegained:
// it offers 10.0.3.15/24 for 6 seconds on gvtap0 and prints each REQUEST.
func TestDHCPServer(t *testing.T) {
	if os.Getenv("GOVIRTIO_DHCP_SERVER") == "" {
		t.Skip("run by TestDHCPLeaseIsRenewedAndRegained")
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); serr == nil {
				serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "gvtap0")
			}
		})
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", ":67")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	server, yours := net.IPv4(10, 0, 3, 1), net.IPv4(10, 0, 3, 15)
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest {
			continue
		}
		var typ dhcpv4.MessageType
		switch req.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
			os.Stdout.WriteString("REQUEST ciaddr=" + req.ClientIPAddr.String() + " from " + from.String() + "\n")
		default:
			continue
		}
		reply, err := dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(yours),
			dhcpv4.WithServerIP(server),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(server),
			dhcpv4.WithLeaseTime(6))
		if err != nil {
			t.Fatal(err)
		}
		to := &net.UDPAddr{IP: net.IPv4bcast, Port: 68}
		if !req.ClientIPAddr.IsUnspecified() {
			to.IP = req.ClientIPAddr
		}
		if _, err := pc.WriteTo(reply.ToBytes(), to); err != nil {
			t.Fatal(err)
		}
	}
}
