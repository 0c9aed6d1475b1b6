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
func (n *Network) dhcp(ctx context.Context) error {
	s := n.Stack
	unspecified := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: header.IPv4Any, PrefixLen: 0}}
	if err := s.AddProtocolAddress(nicID, unspecified, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("network: DHCP: %s", err)
	}
	s.SetSpoofing(nicID, true)
	s.SetPromiscuousMode(nicID, true)
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	defer func() {
		s.RemoveAddress(nicID, header.IPv4Any)
		s.SetSpoofing(nicID, false)
		s.SetPromiscuousMode(nicID, false)
	}()

	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return fmt.Errorf("network: DHCP socket: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: dhcpClientPort}); terr != nil {
		ep.Close()
		return fmt.Errorf("network: DHCP bind: %s", terr)
	}
	conn := gonet.NewUDPConn(&wq, ep)
	defer conn.Close()

	mac := net.HardwareAddr(n.Device.LinkAddress())
	discover, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
	if err != nil {
		return fmt.Errorf("network: DHCP discover: %w", err)
	}
	offer, err := exchange(ctx, conn, discover, dhcpv4.MessageTypeOffer)
	if err != nil {
		return err
	}
	request, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true))
	if err != nil {
		return fmt.Errorf("network: DHCP request: %w", err)
	}
	ack, err := exchange(ctx, conn, request, dhcpv4.MessageTypeAck)
	if err != nil {
		return err
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsValid() || ip.IsUnspecified() {
		return fmt.Errorf("%w: the ACK carries no address", ErrNoLease)
	}
	bits := 24
	if m := ack.SubnetMask(); m != nil {
		bits, _ = m.Size()
	}
	n.Address = netip.PrefixFrom(ip, bits)
	if r := ack.Router(); len(r) > 0 {
		n.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			n.DNS = append(n.DNS, a)
		}
	}
	n.Lease = ack.IPAddressLeaseTime(0)
	n.logf("network: DHCP lease %s from %s for %v", n.Address, ack.ServerIdentifier(), n.Lease)
	return nil
}

// exchange sends msg until a reply of type want with msg's transaction id
// arrives or ctx ends.
func exchange(ctx context.Context, conn *gonet.UDPConn, msg *dhcpv4.DHCPv4, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	server := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpServerPort}
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
				return nil, fmt.Errorf("%w: server refused (%s)", ErrNoLease, reply.Message())
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
