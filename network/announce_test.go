package network

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

func TestAnnouncementsAreGratuitousARPAndUnsolicitedNA(t *testing.T) {
	mac := tcpip.LinkAddress("\x52\x54\x00\x12\x34\x56")
	v4 := tcpip.AddrFrom4([4]byte{10, 0, 2, 15})
	v6 := tcpip.AddrFrom16([16]byte{0xfe, 0x80, 15: 1})
	frames := announcements(mac, []tcpip.ProtocolAddress{
		{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: v4.WithPrefix()},
		{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: header.IPv4Any.WithPrefix()},       // DHCP's placeholder: not announced
		{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: header.IPv4Broadcast.WithPrefix()}, // netstack's: not announced
		{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: v6.WithPrefix()},
	})
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}

	eth := header.Ethernet(frames[0])
	if eth.SourceAddress() != mac || eth.DestinationAddress() != header.EthernetBroadcastAddress || eth.Type() != header.ARPProtocolNumber {
		t.Errorf("ARP frame's Ethernet header: %s -> %s type %#x", eth.SourceAddress(), eth.DestinationAddress(), eth.Type())
	}
	arp := header.ARP(frames[0][header.EthernetMinimumSize:])
	if !arp.IsValid() || arp.Op() != header.ARPRequest ||
		tcpip.LinkAddress(arp.HardwareAddressSender()) != mac ||
		tcpip.AddrFromSlice(arp.ProtocolAddressSender()) != v4 || tcpip.AddrFromSlice(arp.ProtocolAddressTarget()) != v4 {
		t.Errorf("not an ARP announcement of %s from %s: %x", v4, mac, []byte(arp))
	}

	eth = header.Ethernet(frames[1])
	if eth.SourceAddress() != mac || eth.DestinationAddress() != "\x33\x33\x00\x00\x00\x01" || eth.Type() != header.IPv6ProtocolNumber {
		t.Errorf("NA frame's Ethernet header: %s -> %s type %#x", eth.SourceAddress(), eth.DestinationAddress(), eth.Type())
	}
	ip := header.IPv6(frames[1][header.EthernetMinimumSize:])
	if !ip.IsValid(len(ip)) || ip.HopLimit() != header.NDPHopLimit || ip.SourceAddress() != v6 || ip.DestinationAddress() != header.IPv6AllNodesMulticastAddress {
		t.Errorf("NA's IPv6 header: %s -> %s hop limit %d", ip.SourceAddress(), ip.DestinationAddress(), ip.HopLimit())
	}
	icmp := header.ICMPv6(ip.Payload())
	if icmp.Type() != header.ICMPv6NeighborAdvert {
		t.Fatalf("ICMPv6 type %d", icmp.Type())
	}
	sum := icmp.Checksum()
	icmp.SetChecksum(0)
	if want := header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: v6, Dst: header.IPv6AllNodesMulticastAddress}); sum != want {
		t.Errorf("ICMPv6 checksum %#04x, want %#04x", sum, want)
	}
	na := header.NDPNeighborAdvert(icmp.MessageBody())
	if !na.OverrideFlag() || na.SolicitedFlag() || na.TargetAddress() != v6 {
		t.Errorf("NA flags or target: override %v solicited %v target %s", na.OverrideFlag(), na.SolicitedFlag(), na.TargetAddress())
	}
	it, err := na.Options().Iter(true)
	if err != nil {
		t.Fatal(err)
	}
	opt, done, err := it.Next()
	if err != nil || done {
		t.Fatalf("NA options: %v done %v", err, done)
	}
	if tl, ok := opt.(header.NDPTargetLinkLayerAddressOption); !ok || tl.EthernetAddress() != mac {
		t.Errorf("NA option %v, want the target link-layer address %s", opt, mac)
	}
}
