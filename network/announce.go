package network

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// announce tells the network where this host's addresses now live, as a
// device with GUEST_ANNOUNCE asks after the machine moved (a live
// migration; virtio 1.2 §5.1.6.5.4), and as Linux's netdev_notify_peers
// does: a gratuitous ARP request for each IPv4 address (an "ARP
// Announcement", RFC 5227 §2.3) and an unsolicited neighbour advertisement
// for each IPv6 address (RFC 4861 §7.2.6). Switches relearn the port from
// the source MAC, neighbours update their caches. The driver acknowledges
// the request once this returns.
func (n *Network) announce() {
	mac := n.Device.LinkAddress()
	frames := announcements(mac, n.Stack.AllAddresses()[nicID])
	var pkts stack.PacketBufferList
	for _, f := range frames {
		pkts.PushBack(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(f)}))
	}
	sent, err := n.Device.WritePackets(pkts)
	pkts.DecRef()
	if err != nil {
		n.logf("network: announcing the address: %d of %d frames sent: %s", sent, len(frames), err)
		return
	}
	n.logf("network: announced %s from %s (%d frames)", n.Address, mac, len(frames))
}

// announcements builds the Ethernet frames that announce addrs from mac:
// one per unicast IPv4 or IPv6 address. netstack lists the unspecified
// address (while DHCP runs) and IPv4's broadcast address among a NIC's
// addresses; they are not the host's to announce.
func announcements(mac tcpip.LinkAddress, addrs []tcpip.ProtocolAddress) [][]byte {
	var frames [][]byte
	for _, a := range addrs {
		addr := a.AddressWithPrefix.Address
		if addr.Unspecified() {
			continue
		}
		switch a.Protocol {
		case ipv4.ProtocolNumber:
			if addr != header.IPv4Broadcast && !header.IsV4MulticastAddress(addr) {
				frames = append(frames, arpAnnouncement(mac, addr))
			}
		case ipv6.ProtocolNumber:
			if !header.IsV6MulticastAddress(addr) {
				frames = append(frames, unsolicitedNA(mac, addr))
			}
		}
	}
	return frames
}

// arpAnnouncement is a broadcast ARP request whose sender and target
// protocol addresses are both addr (RFC 5227 §2.3; target hardware address
// zero, as Linux sends it).
func arpAnnouncement(mac tcpip.LinkAddress, addr tcpip.Address) []byte {
	b := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(b).Encode(&header.EthernetFields{
		SrcAddr: mac,
		DstAddr: header.EthernetBroadcastAddress,
		Type:    header.ARPProtocolNumber,
	})
	arp := header.ARP(b[header.EthernetMinimumSize:])
	arp.SetIPv4OverEthernet()
	arp.SetOp(header.ARPRequest)
	copy(arp.HardwareAddressSender(), mac)
	copy(arp.ProtocolAddressSender(), addr.AsSlice())
	copy(arp.ProtocolAddressTarget(), addr.AsSlice())
	return b
}

// unsolicitedNA is a neighbour advertisement for addr to all nodes, with
// the override flag and the target link-layer address option (RFC 4861
// §7.2.6), hop limit 255 as NDP requires.
func unsolicitedNA(mac tcpip.LinkAddress, addr tcpip.Address) []byte {
	opts := header.NDPOptionsSerializer{header.NDPTargetLinkLayerAddressOption(mac)}
	icmpLen := header.ICMPv6NeighborAdvertMinimumSize + opts.Length()
	b := make([]byte, header.EthernetMinimumSize+header.IPv6MinimumSize+icmpLen)
	dst := header.IPv6AllNodesMulticastAddress
	header.Ethernet(b).Encode(&header.EthernetFields{
		SrcAddr: mac,
		DstAddr: header.EthernetAddressFromMulticastIPv6Address(dst),
		Type:    header.IPv6ProtocolNumber,
	})
	ip := header.IPv6(b[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icmpLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          header.NDPHopLimit,
		SrcAddr:           addr,
		DstAddr:           dst,
	})
	icmp := header.ICMPv6(ip.Payload())
	icmp.SetType(header.ICMPv6NeighborAdvert)
	na := header.NDPNeighborAdvert(icmp.MessageBody())
	na.SetOverrideFlag(true)
	na.SetTargetAddress(addr)
	na.Options().Serialize(opts)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: addr, Dst: dst}))
	return b
}
