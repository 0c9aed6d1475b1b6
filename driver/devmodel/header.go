package devmodel

import (
	"encoding/binary"
	"fmt"
)

// virtio_net_hdr flags (virtio 1.2 §5.1.6).
const (
	HdrNeedsCsum uint8 = 1 // csum_start/csum_offset describe a checksum to complete
	HdrDataValid uint8 = 2 // RX: the checksum was verified by the device
	HdrRSCInfo   uint8 = 4 // RX: coalescing info in csum fields (not modelled)
)

// virtio_net_hdr gso_type values (virtio 1.2 §5.1.6).
const (
	GSONone  uint8 = 0    // not a GSO packet
	GSOTCPv4 uint8 = 1    // TCP over IPv4 segmentation
	GSOUDP   uint8 = 3    // UDP fragmentation (UFO)
	GSOTCPv6 uint8 = 4    // TCP over IPv6 segmentation
	GSOUDPL4 uint8 = 5    // UDP segmentation (USO)
	GSOECN   uint8 = 0x80 // flag: the packet has CWR set and needs ECN-aware segmentation
)

// Header lengths: the legacy header without num_buffers, and the header with
// num_buffers used with MRG_RXBUF or VERSION_1 (virtio 1.2 §5.1.6).
const (
	HeaderLen       = 10
	HeaderLenMrgBuf = 12
)

// Header is a virtio_net_hdr in host form.
type Header struct {
	Flags      uint8  // HdrNeedsCsum, HdrDataValid
	GSOType    uint8  // GSONone, GSOTCPv4, GSOTCPv6..., possibly with GSOECN
	HdrLen     uint16 // length of the protocol headers (a hint without GUEST_HDRLEN)
	GSOSize    uint16 // payload bytes per segment
	CsumStart  uint16 // where checksumming starts
	CsumOffset uint16 // where, after CsumStart, the checksum goes
	NumBuffers uint16 // RX with the 12-byte header: how many buffers hold the packet
}

// marshal writes h into b, which is HeaderLen or HeaderLenMrgBuf long.
func (h *Header) marshal(b []byte) {
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
	if len(b) >= HeaderLenMrgBuf {
		binary.LittleEndian.PutUint16(b[10:], h.NumBuffers)
	}
}

// parseHeader decodes a header of hdrLen bytes at the start of b.
func parseHeader(b []byte, hdrLen int) (Header, error) {
	if len(b) < hdrLen {
		return Header{}, fmt.Errorf("devmodel: packet of %d bytes shorter than the %d-byte virtio_net_hdr", len(b), hdrLen)
	}
	h := Header{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
	if hdrLen >= HeaderLenMrgBuf {
		h.NumBuffers = binary.LittleEndian.Uint16(b[10:])
	}
	return h, nil
}

// Frame is one Ethernet frame with the virtio_net_hdr that describes its
// offloads: what a driver transmitted, or what a test injects.
type Frame struct {
	Hdr  Header // offload description (NumBuffers is ignored)
	Data []byte // the Ethernet frame, from destination MAC on
}
