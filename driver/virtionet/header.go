package virtionet

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// struct virtio_net_hdr sizes (virtio 1.2 §5.1.6): without num_buffers on a
// legacy device without MRG_RXBUF, with it otherwise.
const (
	HeaderLenLegacy = 10
	HeaderLenMrg    = 12
)

// Header flags (virtio 1.2 §5.1.6).
const (
	HdrFlagNeedsCsum uint8 = 1 // csum_start/csum_offset name a partial checksum to complete
	HdrFlagDataValid uint8 = 2 // RX: the device validated the checksum
	HdrFlagRSCInfo   uint8 = 4 // RX: coalescing info in csum fields (RSC_EXT)
)

// Header GSO types (virtio 1.2 §5.1.6).
const (
	GSONone  uint8 = 0
	GSOTCPv4 uint8 = 1
	GSOUDP   uint8 = 3
	GSOTCPv6 uint8 = 4
	GSOUDPL4 uint8 = 5
	GSOECN   uint8 = 0x80 // flag: the TSO packet has ECN CWR set
)

// ErrBadHeader is wrapped by every error about a device-provided header.
var ErrBadHeader = errors.New("virtionet: bad virtio_net_hdr")

// Header is struct virtio_net_hdr in host form. Fields are little-endian on
// the wire (VERSION_1; legacy devices use guest order, which is little-endian
// on every architecture this driver runs on).
type Header struct {
	Flags      uint8  // HdrFlag* bits
	GSOType    uint8  // GSO* value, possibly with GSOECN
	HdrLen     uint16 // TX TSO: length of the Ethernet+IP+TCP headers
	GSOSize    uint16 // TSO: payload bytes per segment (MSS)
	CsumStart  uint16 // NEEDS_CSUM: offset where checksumming starts
	CsumOffset uint16 // NEEDS_CSUM: checksum position relative to CsumStart
	NumBuffers uint16 // MRG_RXBUF RX: used buffers this packet spans; else 0
}

// Encode writes h into b, whose length (10 or 12) selects the layout.
func (h *Header) Encode(b []byte) {
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
	if len(b) >= HeaderLenMrg {
		binary.LittleEndian.PutUint16(b[10:], h.NumBuffers)
	}
}

// DecodeHeader reads a header of n bytes (10 or 12) from b. NumBuffers is 0
// for the 10-byte form. It fails only when b is shorter than n.
func DecodeHeader(b []byte, n int) (Header, error) {
	if len(b) < n || (n != HeaderLenLegacy && n != HeaderLenMrg) {
		return Header{}, fmt.Errorf("%w: %d bytes, need %d", ErrBadHeader, len(b), n)
	}
	h := Header{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
	if n == HeaderLenMrg {
		h.NumBuffers = binary.LittleEndian.Uint16(b[10:])
	}
	return h, nil
}

// txHeader builds the header of an outgoing packet from gVisor's GSO
// options (what the TCP endpoint asked for when the link reports
// HostGSOSupported). pktHeaderSize is the size of the link, network and
// transport headers; dataSize is the TCP payload length; ecn says whether
// TSO packets with CWR may be sent (HOST_ECN accepted).
func txHeader(gso *stack.GSO, pktHeaderSize, dataSize int, csum bool) Header {
	var h Header
	if gso.Type == stack.GSONone || gso.Type == stack.GSOGvisor {
		return h
	}
	if gso.NeedsCsum && csum {
		h.Flags = HdrFlagNeedsCsum
		h.CsumStart = header.EthernetMinimumSize + gso.L3HdrLen
		h.CsumOffset = gso.CsumOffset
	}
	if dataSize > int(gso.MSS) && gso.MSS != 0 {
		switch gso.Type {
		case stack.GSOTCPv4:
			h.GSOType = GSOTCPv4
		case stack.GSOTCPv6:
			h.GSOType = GSOTCPv6
		}
		h.GSOSize = gso.MSS
		h.HdrLen = uint16(pktHeaderSize)
	}
	return h
}

// markECN sets the ECN flag of a TSO header when the packet's TCP header
// has CWR set: the device must then set CWR on the first segment only
// (virtio 1.2 §5.1.6.2).
func markECN(h *Header, tcp []byte) {
	const flagsOff = 13 // TCP flags byte
	if h.GSOType != GSONone && len(tcp) > flagsOff && tcp[flagsOff]&uint8(header.TCPFlagCwr) != 0 {
		h.GSOType |= GSOECN
	}
}

// rxChecksumValidated reports whether a received packet's transport
// checksum needs no verification: the device validated it (DATA_VALID) or
// the packet never had a complete checksum because it came from a local
// sender that offloaded it (NEEDS_CSUM), which is only legal with
// GUEST_CSUM.
func rxChecksumValidated(h *Header, guestCsum bool) bool {
	return guestCsum && h.Flags&(HdrFlagDataValid|HdrFlagNeedsCsum) != 0
}
