package devmodel

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol constants the software offloads need (IEEE 802.3, RFC 791,
// RFC 8200, RFC 9293).
const (
	etherHdrLen   = 14
	vlanTagLen    = 4
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	ipv6HdrLen    = 40
	protoTCP      = 6
	tcpFlagFIN    = 0x01
	tcpFlagPSH    = 0x08
	tcpFlagCWR    = 0x80
)

// Errors of the software offloads: the frame does not hold what its header
// claims.
var (
	ErrMalformed   = errors.New("frame too short or malformed for its offload")
	ErrUnsupported = errors.New("offload not modelled")
)

// checksumAdd adds b to a one's complement running sum.
func checksumAdd(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// checksumFold folds a running sum to 16 bits.
func checksumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// completeChecksum does what NEEDS_CSUM asks of the device (virtio 1.2
// §5.1.6.2): the one's complement of the sum from csumStart to the end of
// the frame, stored at csumStart+csumOffset. The driver left the
// pseudo-header sum in that field, so it is part of the sum.
func completeChecksum(frame []byte, csumStart, csumOffset int) error {
	at := csumStart + csumOffset
	if csumStart >= len(frame) || at+2 > len(frame) {
		return fmt.Errorf("devmodel: csum_start %d + csum_offset %d outside a %d-byte frame: %w", csumStart, csumOffset, len(frame), ErrMalformed)
	}
	// Ethernet padding after the IP packet is not part of what is summed.
	cs := ^checksumFold(checksumAdd(0, frame[csumStart:max(ipEnd(frame), at+2)]))
	if cs == 0 {
		cs = 0xffff // the same value in one's complement, and UDP reserves 0
	}
	binary.BigEndian.PutUint16(frame[at:], cs)
	return nil
}

// ipEnd returns where the IP packet in an Ethernet frame ends according to
// its length field, or len(frame) when the frame is not IP or the field is
// not plausible (some stacks leave it 0 in large GSO packets).
func ipEnd(frame []byte) int {
	if len(frame) < etherHdrLen {
		return len(frame)
	}
	l3 := etherHdrLen
	et := binary.BigEndian.Uint16(frame[12:])
	if et == etherTypeVLAN && len(frame) >= etherHdrLen+vlanTagLen {
		et = binary.BigEndian.Uint16(frame[16:])
		l3 += vlanTagLen
	}
	end := len(frame)
	switch {
	case et == etherTypeIPv4 && len(frame) >= l3+20:
		end = l3 + int(binary.BigEndian.Uint16(frame[l3+2:]))
	case et == etherTypeIPv6 && len(frame) >= l3+ipv6HdrLen:
		end = l3 + ipv6HdrLen + int(binary.BigEndian.Uint16(frame[l3+4:]))
	}
	if end <= l3 || end > len(frame) {
		return len(frame)
	}
	return end
}

// tcpLayout locates the headers of a TCP frame over IPv4 or IPv6.
type tcpLayout struct {
	l3  int  // offset of the IP header
	l4  int  // offset of the TCP header
	end int  // offset of the payload
	v6  bool // IPv6 rather than IPv4
}

// parseTCP finds the Ethernet (with at most one VLAN tag), IP and TCP
// headers of frame. IPv6 extension headers are not modelled.
func parseTCP(frame []byte) (tcpLayout, error) {
	var l tcpLayout
	bad := func(what string) (tcpLayout, error) {
		return tcpLayout{}, fmt.Errorf("devmodel: %s: %w", what, ErrMalformed)
	}
	if len(frame) < etherHdrLen {
		return bad("short Ethernet header")
	}
	l.l3 = etherHdrLen
	et := binary.BigEndian.Uint16(frame[12:])
	if et == etherTypeVLAN {
		if len(frame) < etherHdrLen+vlanTagLen {
			return bad("short VLAN tag")
		}
		et = binary.BigEndian.Uint16(frame[16:])
		l.l3 += vlanTagLen
	}
	switch et {
	case etherTypeIPv4:
		if len(frame) < l.l3+20 || frame[l.l3]>>4 != 4 {
			return bad("short or non-v4 IPv4 header")
		}
		ihl := int(frame[l.l3]&0xf) * 4
		if ihl < 20 || len(frame) < l.l3+ihl {
			return bad("bad IPv4 header length")
		}
		if frame[l.l3+9] != protoTCP {
			return tcpLayout{}, fmt.Errorf("devmodel: IPv4 protocol %d: %w", frame[l.l3+9], ErrUnsupported)
		}
		l.l4 = l.l3 + ihl
	case etherTypeIPv6:
		if len(frame) < l.l3+ipv6HdrLen || frame[l.l3]>>4 != 6 {
			return bad("short or non-v6 IPv6 header")
		}
		if frame[l.l3+6] != protoTCP {
			return tcpLayout{}, fmt.Errorf("devmodel: IPv6 next header %d: %w", frame[l.l3+6], ErrUnsupported)
		}
		l.l4 = l.l3 + ipv6HdrLen
		l.v6 = true
	default:
		return tcpLayout{}, fmt.Errorf("devmodel: EtherType %#04x: %w", et, ErrUnsupported)
	}
	if len(frame) < l.l4+20 {
		return bad("short TCP header")
	}
	doff := int(frame[l.l4+12]>>4) * 4
	if doff < 20 || len(frame) < l.l4+doff {
		return bad("bad TCP data offset")
	}
	l.end = l.l4 + doff
	return l, nil
}

// fixTCPChecksums recomputes the IPv4 header checksum and the TCP checksum
// of one complete segment, after its lengths were set.
func fixTCPChecksums(seg []byte, l tcpLayout) {
	var pseudo uint32
	tcpLen := len(seg) - l.l4
	if l.v6 {
		pseudo = checksumAdd(0, seg[l.l3+8:l.l3+40])
	} else {
		ip := seg[l.l3:l.l4]
		binary.BigEndian.PutUint16(ip[10:], 0)
		binary.BigEndian.PutUint16(ip[10:], ^checksumFold(checksumAdd(0, ip)))
		pseudo = checksumAdd(0, seg[l.l3+12:l.l3+20])
	}
	pseudo += protoTCP + uint32(tcpLen)
	binary.BigEndian.PutUint16(seg[l.l4+16:], 0)
	cs := ^checksumFold(checksumAdd(pseudo, seg[l.l4:]))
	binary.BigEndian.PutUint16(seg[l.l4+16:], cs)
}

// segmentTCP cuts a TCP GSO frame into frames of at most mss payload bytes,
// as a NIC's TSO engine does: each segment carries copies of the headers
// with its own IP length (and for IPv4 an id one more than the previous),
// its own sequence number and full checksums; FIN and PSH stay on the last
// segment only and CWR on the first only. emit is called for each segment;
// the slice is reused after it returns.
func segmentTCP(frame []byte, mss int, buf []byte, emit func(seg []byte)) ([]byte, error) {
	if mss <= 0 {
		return buf, fmt.Errorf("devmodel: gso_size 0: %w", ErrMalformed)
	}
	l, err := parseTCP(frame)
	if err != nil {
		return buf, err
	}
	hdrs, payload := frame[:l.end], frame[l.end:max(ipEnd(frame), l.end)]
	seq := binary.BigEndian.Uint32(frame[l.l4+4:])
	var id uint16
	if !l.v6 {
		id = binary.BigEndian.Uint16(frame[l.l3+4:])
	}
	flags := frame[l.l4+13]
	for i, off := 0, 0; off < len(payload) || i == 0; i++ {
		n := min(mss, len(payload)-off)
		buf = append(append(buf[:0], hdrs...), payload[off:off+n]...)
		last := off+n >= len(payload)
		f := flags
		if !last {
			f &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			f &^= tcpFlagCWR
		}
		buf[l.l4+13] = f
		binary.BigEndian.PutUint32(buf[l.l4+4:], seq+uint32(off))
		if l.v6 {
			binary.BigEndian.PutUint16(buf[l.l3+4:], uint16(len(buf)-l.l3-ipv6HdrLen))
		} else {
			binary.BigEndian.PutUint16(buf[l.l3+2:], uint16(len(buf)-l.l3))
			binary.BigEndian.PutUint16(buf[l.l3+4:], id+uint16(i))
		}
		fixTCPChecksums(buf, l)
		emit(buf)
		off += n
	}
	return buf, nil
}
