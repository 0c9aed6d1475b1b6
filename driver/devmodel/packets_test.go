package devmodel

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Frames for the tests are built and checked with gVisor's header package,
// so the device's own checksum and segmentation code is checked against an
// independent implementation.

var (
	macA = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x0a")
	macB = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x0b")
	ip4A = tcpip.AddrFrom4([4]byte{10, 0, 2, 15})
	ip4B = tcpip.AddrFrom4([4]byte{10, 0, 2, 2})
	ip6A = tcpip.AddrFrom16([16]byte{0xfd, 0, 15: 1})
	ip6B = tcpip.AddrFrom16([16]byte{0xfd, 0, 15: 2})
)

// tcpSpec describes a TCP frame to build.
type tcpSpec struct {
	v6      bool            // IPv6 rather than IPv4
	payload []byte          // TCP payload
	seq     uint32          // sequence number
	flags   header.TCPFlags // TCP flags
	ipID    uint16          // IPv4 id
	// partial leaves the pseudo-header sum in the TCP checksum field, as a
	// driver does for NEEDS_CSUM (with length) or GSO (without).
	partial bool
	gso     bool // pseudo-header sum without the length (GSO)
}

// tcpFrame builds an Ethernet/IP/TCP frame and returns it with the offsets
// of the TCP header (csum_start) and the checksum within it.
func tcpFrame(s tcpSpec) (frame []byte, csumStart, csumOffset int) {
	l3 := header.EthernetMinimumSize
	ipLen := header.IPv4MinimumSize
	proto := header.IPv4ProtocolNumber
	src, dst := ip4A, ip4B
	if s.v6 {
		ipLen = header.IPv6MinimumSize
		proto = header.IPv6ProtocolNumber
		src, dst = ip6A, ip6B
	}
	l4 := l3 + ipLen
	tcpLen := header.TCPMinimumSize + len(s.payload)
	frame = make([]byte, l4+tcpLen)
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: macA, DstAddr: macB, Type: proto})
	if s.v6 {
		header.IPv6(frame[l3:]).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tcpLen), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: src, DstAddr: dst,
		})
	} else {
		ip := header.IPv4(frame[l3:])
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(ipLen + tcpLen), ID: s.ipID, TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := header.TCP(frame[l4:])
	tcp.Encode(&header.TCPFields{
		SrcPort: 40000, DstPort: 80, SeqNum: s.seq, AckNum: 1,
		DataOffset: header.TCPMinimumSize, Flags: s.flags, WindowSize: 65535,
	})
	copy(frame[l4+header.TCPMinimumSize:], s.payload)
	length := uint16(tcpLen)
	if s.gso {
		length = 0
	}
	pseudo := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, length)
	if s.partial {
		tcp.SetChecksum(pseudo)
	} else {
		full := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))
		tcp.SetChecksum(^checksum.Checksum(frame[l4:], full))
	}
	return frame, l4, 16
}

// parsedTCP is what checkTCPFrame found in a frame.
type parsedTCP struct {
	ipID    uint16          // IPv4 id
	seq     uint32          // TCP sequence number
	flags   header.TCPFlags // TCP flags
	payload []byte          // TCP payload
}

// checkTCPFrame parses a frame and checks its lengths and checksums.
func checkTCPFrame(t *testing.T, frame []byte) parsedTCP {
	t.Helper()
	frame = withoutVLAN(frame)
	eth := header.Ethernet(frame)
	var src, dst tcpip.Address
	var tcp header.TCP
	var p parsedTCP
	switch eth.Type() {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(frame[header.EthernetMinimumSize:])
		if !ip.IsValid(len(ip)) {
			t.Fatalf("invalid IPv4 header")
		}
		// Only a minimum-size frame may carry padding after the packet.
		if tl := int(ip.TotalLength()); tl > len(ip) || (tl != len(ip) && len(frame) > 60) {
			t.Errorf("IPv4 total length %d, frame holds %d", ip.TotalLength(), len(ip))
		} else {
			ip = ip[:tl]
		}
		if !ip.IsChecksumValid() {
			t.Errorf("IPv4 header checksum invalid")
		}
		src, dst, p.ipID = ip.SourceAddress(), ip.DestinationAddress(), ip.ID()
		tcp = header.TCP(ip.Payload())
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(frame[header.EthernetMinimumSize:])
		if int(ip.PayloadLength())+header.IPv6MinimumSize != len(ip) {
			t.Errorf("IPv6 payload length %d, frame holds %d", ip.PayloadLength(), len(ip)-header.IPv6MinimumSize)
		}
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
		tcp = header.TCP(ip.Payload())
	default:
		t.Fatalf("EtherType %#x", eth.Type())
	}
	payload := tcp.Payload()
	if !tcp.IsChecksumValid(src, dst, checksum.Checksum(payload, 0), uint16(len(payload))) {
		t.Errorf("TCP checksum invalid (seq %d)", tcp.SequenceNumber())
	}
	p.seq, p.flags, p.payload = tcp.SequenceNumber(), tcp.Flags(), payload
	return p
}

// pattern returns n bytes of a recognisable pattern.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// withVLAN inserts an 802.1Q tag (VLAN 5) after the MAC addresses.
func withVLAN(frame []byte) []byte {
	out := append([]byte(nil), frame[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x05)
	return append(out, frame[12:]...)
}

// withoutVLAN removes an 802.1Q tag if there is one.
func withoutVLAN(frame []byte) []byte {
	if len(frame) < 18 || frame[12] != 0x81 || frame[13] != 0x00 {
		return frame
	}
	return append(append([]byte(nil), frame[:12]...), frame[16:]...)
}
