package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// errNAK marks a server's refusal (DHCPNAK) of a lease.
var errNAK = errors.New("DHCPNAK")

// infiniteLease is option 51's "forever" (RFC 2131 §3.3).
const infiniteLease = 0xffffffff * time.Second

// keepLease holds on to the lease ack granted at got (RFC 2131 §4.4.5).
// From T1 (option 58, else half the lease) it asks the server that granted
// it to extend it, by unicast; from T2 (option 59, else seven eighths) any
// server, by broadcast. When the lease runs out, or a server refuses it,
// the address is removed and the client starts over with a DISCOVER that
// asks for the same address; connections on it are lost only if the
// server gives another. It returns when ctx ends.
func (n *Network) keepLease(ctx context.Context, ack *dhcpv4.DHCPv4, got time.Time) {
	defer close(n.leaseDone)
	for {
		lease := ack.IPAddressLeaseTime(0)
		if lease <= 0 || lease >= infiniteLease {
			return
		}
		t1, t2 := leaseTimers(ack, lease)
		if !sleepUntil(ctx, got.Add(t1)) {
			return
		}
		addr, _ := leaseAddress(ack)
		sent := time.Now()
		server := &net.UDPAddr{IP: ack.ServerIdentifier(), Port: dhcpServerPort}
		reply, err := n.renew(ctx, ack, addr.Addr(), server, got.Add(t2))
		if err != nil && !errors.Is(err, errNAK) && ctx.Err() == nil {
			reply, err = n.renew(ctx, ack, addr.Addr(), broadcast, got.Add(lease))
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if p, _ := leaseAddress(reply); p == addr {
				ack, got = reply, sent // the lease runs from the request (§4.4.5)
				n.renewals.Add(1)
				n.logf("network: DHCP lease %s renewed for %v", addr, ack.IPAddressLeaseTime(0))
				continue
			}
			err = fmt.Errorf("the server moved the lease to another address")
		}
		n.logf("network: DHCP lease %s lost (%v); asking again", addr, err)
		n.unconfigure(addr)
		if ack, got = n.rediscover(ctx, addr.Addr()); ack == nil {
			return
		}
	}
}

// leaseTimers returns T1 and T2 for a lease, from the ACK's options when
// they are in order (T1 < T2 < lease), else the defaults.
func leaseTimers(ack *dhcpv4.DHCPv4, lease time.Duration) (t1, t2 time.Duration) {
	t1 = ack.IPAddressRenewalTime(lease / 2)
	t2 = ack.IPAddressRebindingTime(lease * 7 / 8)
	if t1 <= 0 || t1 >= t2 || t2 >= lease {
		return lease / 2, lease * 7 / 8
	}
	return t1, t2
}

// renew sends a DHCPREQUEST for ack's lease on addr (ciaddr set, RFC 2131
// §4.3.2) to server until an ACK or NAK comes back or until passes.
func (n *Network) renew(ctx context.Context, ack *dhcpv4.DHCPv4, addr netip.Addr, server *net.UDPAddr, until time.Time) (*dhcpv4.DHCPv4, error) {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	var wq waiter.Queue
	ep, terr := n.Stack.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("network: DHCP socket: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(addr.AsSlice()), Port: dhcpClientPort}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("network: DHCP bind: %s", terr)
	}
	conn := gonet.NewUDPConn(&wq, ep)
	defer conn.Close()
	req, err := dhcpv4.NewRenewFromAck(ack, dhcpv4.WithTransactionID(newTransactionID()),
		dhcpv4.WithHwAddr(net.HardwareAddr(n.Device.LinkAddress())))
	if err != nil {
		return nil, fmt.Errorf("network: DHCP renew: %w", err)
	}
	return exchange(ctx, conn, req, dhcpv4.MessageTypeAck, server)
}

// rediscover gets a lease again after one was lost, asking for want, and
// configures the stack with it. It retries until it succeeds (returning
// the ACK and when it came) or ctx ends (nil).
func (n *Network) rediscover(ctx context.Context, want netip.Addr) (*dhcpv4.DHCPv4, time.Time) {
	wait := time.Second
	for {
		ack, err := n.dhcp(ctx, want)
		if err == nil {
			p, _ := leaseAddress(ack)
			gw := netip.Addr{}
			if r := ack.Router(); len(r) > 0 {
				gw, _ = netip.AddrFromSlice(r[0].To4())
			}
			if err = n.configure(p, gw); err == nil {
				n.leaseMu.Lock()
				n.current = p
				n.leaseMu.Unlock()
				n.publishResolver(p, leaseDNS(ack))
				n.logf("network: DHCP lease %s from %s for %v", p, ack.ServerIdentifier(), ack.IPAddressLeaseTime(0))
				return ack, time.Now()
			}
		}
		if ctx.Err() != nil {
			return nil, time.Time{}
		}
		n.logf("network: DHCP: %v; trying again in %v", err, wait)
		if !sleepUntil(ctx, time.Now().Add(wait)) {
			return nil, time.Time{}
		}
		wait = min(2*wait, time.Minute)
	}
}

// sleepUntil waits until t; false means ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// newTransactionID returns a random DHCP transaction id.
func newTransactionID() dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	v := rand.Uint32()
	x[0], x[1], x[2], x[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return x
}
