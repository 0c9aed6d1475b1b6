package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	dhcpClientPort = 68
	dhcpServerPort = 67
)

// dhcp runs DHCPv4's DISCOVER/OFFER/REQUEST/ACK exchange (RFC 2131 §3.1)
// on the NIC, which has no address yet: it sends from 0.0.0.0 to the
// broadcast address and accepts replies to any address meanwhile. Message
// encoding is insomniacslk/dhcp's. Retransmissions back off from 1 s.
//
// want, if valid, is asked for (the address of a lease that was lost). The
// ACK is returned; applyLease reads the configuration from it.
func (n *Network) dhcp(ctx context.Context, want netip.Addr) (*dhcpv4.DHCPv4, error) {
	s := n.Stack
	unspecified := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: header.IPv4Any, PrefixLen: 0}}
	if err := s.AddProtocolAddress(nicID, unspecified, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("network: DHCP: %s", err)
	}
	s.SetSpoofing(nicID, true)
	s.SetPromiscuousMode(nicID, true)
	setRoutes(s, []tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	defer func() {
		s.RemoveAddress(nicID, header.IPv4Any)
		s.SetSpoofing(nicID, false)
		s.SetPromiscuousMode(nicID, false)
	}()

	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("network: DHCP socket: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: dhcpClientPort}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("network: DHCP bind: %s", terr)
	}
	conn := gonet.NewUDPConn(&wq, ep)
	defer conn.Close()

	mac := net.HardwareAddr(n.Device.LinkAddress())
	mods := []dhcpv4.Modifier{dhcpv4.WithBroadcast(true)}
	if want.Is4() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(want.AsSlice())))
	}
	discover, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		return nil, fmt.Errorf("network: DHCP discover: %w", err)
	}
	offer, err := exchange(ctx, conn, discover, dhcpv4.MessageTypeOffer, broadcast)
	if err != nil {
		return nil, err
	}
	request, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true))
	if err != nil {
		return nil, fmt.Errorf("network: DHCP request: %w", err)
	}
	ack, err := exchange(ctx, conn, request, dhcpv4.MessageTypeAck, broadcast)
	if err != nil {
		return nil, err
	}
	if _, err := leaseAddress(ack); err != nil {
		return nil, err
	}
	return ack, nil
}

// broadcast is where a client without a server's address sends.
var broadcast = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpServerPort}

// leaseAddress is the address and prefix an ACK grants.
func leaseAddress(ack *dhcpv4.DHCPv4) (netip.Prefix, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsValid() || ip.IsUnspecified() {
		return netip.Prefix{}, fmt.Errorf("%w: the ACK carries no address", ErrNoLease)
	}
	bits := 24
	if m := ack.SubnetMask(); m != nil {
		bits, _ = m.Size()
	}
	return netip.PrefixFrom(ip, bits), nil
}

// applyLease sets the Network's configuration from an ACK.
func (n *Network) applyLease(ack *dhcpv4.DHCPv4) {
	n.Address, _ = leaseAddress(ack)
	n.Gateway, n.DNS = netip.Addr{}, nil
	if r := ack.Router(); len(r) > 0 {
		n.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	n.DNS = leaseDNS(ack)
	n.Lease = ack.IPAddressLeaseTime(0)
	n.logf("network: DHCP lease %s from %s for %v", n.Address, ack.ServerIdentifier(), n.Lease)
}

// exchange sends msg to server until a reply of type want with msg's
// transaction id arrives or ctx ends. A NAK ends it with ErrNAK.
func exchange(ctx context.Context, conn *gonet.UDPConn, msg *dhcpv4.DHCPv4, want dhcpv4.MessageType, server *net.UDPAddr) (*dhcpv4.DHCPv4, error) {
	buf := make([]byte, 1500)
	wait := time.Second
	for {
		if _, err := conn.WriteTo(msg.ToBytes(), server); err != nil {
			return nil, fmt.Errorf("network: DHCP send %s: %w", msg.MessageType(), err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetReadDeadline(deadline)
		for {
			nr, _, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, fmt.Errorf("network: DHCP receive: %w", err)
			}
			reply, err := dhcpv4.FromBytes(buf[:nr])
			if err != nil || reply.TransactionID != msg.TransactionID || reply.OpCode != dhcpv4.OpcodeBootReply {
				continue // not ours
			}
			switch reply.MessageType() {
			case want:
				return reply, nil
			case dhcpv4.MessageTypeNak:
				return nil, fmt.Errorf("%w: server refused (%s): %w", ErrNoLease, reply.Message(), errNAK)
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: no %s within the timeout", ErrNoLease, want)
		}
		if wait < 8*time.Second {
			wait *= 2
		}
	}
}
