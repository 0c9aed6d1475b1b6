package virtionet

import (
	"bytes"
	"errors"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

func TestHeaderEncodeDecode(t *testing.T) {
	tests := []struct {
		name string
		len  int
		hdr  Header
		wire []byte
	}{
		{"zero header, legacy 10 bytes", 10, Header{}, make([]byte, 10)},
		{"zero header, 12 bytes", 12, Header{}, make([]byte, 12)},
		{
			"TSOv4 with checksum, 12 bytes, little-endian fields",
			12,
			Header{Flags: HdrFlagNeedsCsum, GSOType: GSOTCPv4, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16, NumBuffers: 3},
			[]byte{1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 3, 0},
		},
		{
			"10-byte form drops num_buffers",
			10,
			Header{Flags: HdrFlagDataValid, GSOType: GSOTCPv6 | GSOECN, HdrLen: 0x1234, GSOSize: 0x5678},
			[]byte{2, 0x84, 0x34, 0x12, 0x78, 0x56, 0, 0, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, tt.len)
			tt.hdr.Encode(b)
			if !bytes.Equal(b, tt.wire) {
				t.Fatalf("Encode = % x, want % x", b, tt.wire)
			}
			got, err := DecodeHeader(tt.wire, tt.len)
			if err != nil {
				t.Fatalf("DecodeHeader: %v", err)
			}
			want := tt.hdr
			if tt.len == HeaderLenLegacy {
				want.NumBuffers = 0
			}
			if got != want {
				t.Fatalf("DecodeHeader = %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecodeHeaderRejectsShortInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		buf  int
		n    int
	}{
		{"empty buffer", 0, 12},
		{"11 bytes for a 12-byte header", 11, 12},
		{"9 bytes for a 10-byte header", 9, 10},
		{"unknown header size", 20, 11},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeHeader(make([]byte, tt.buf), tt.n); !errors.Is(err, ErrBadHeader) {
				t.Fatalf("err = %v, want ErrBadHeader", err)
			}
		})
	}
}

func TestHeaderLenFollowsNegotiatedFeatures(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features uint64
		want     int
	}{
		{"legacy without MRG_RXBUF", FeatureCsum, 10},
		{"legacy with MRG_RXBUF", FeatureMrgRxbuf, 12},
		{"VERSION_1 without MRG_RXBUF", virtio.FeatureVersion1, 12},
		{"VERSION_1 with MRG_RXBUF", virtio.FeatureVersion1 | FeatureMrgRxbuf, 12},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := headerLen(tt.features); got != tt.want {
				t.Fatalf("headerLen(%s) = %d, want %d", FeatureString(tt.features), got, tt.want)
			}
		})
	}
}

func TestTxHeaderFromGSO(t *testing.T) {
	tcp4 := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1448, L3HdrLen: 20}
	tcp6 := stack.GSO{Type: stack.GSOTCPv6, NeedsCsum: true, CsumOffset: 16, MSS: 1428, L3HdrLen: 40}
	for _, tt := range []struct {
		name     string
		gso      stack.GSO
		hdrSize  int
		dataSize int
		csum     bool
		want     Header
	}{
		{"no GSO gives an empty header", stack.GSO{}, 54, 100, true, Header{}},
		{"gVisor GSO gives an empty header", stack.GSO{Type: stack.GSOGvisor}, 54, 100, true, Header{}},
		{
			"small TCPv4 segment: checksum only",
			tcp4, 66, 1000, true,
			Header{Flags: HdrFlagNeedsCsum, CsumStart: 34, CsumOffset: 16},
		},
		{
			"large TCPv4 segment: TSO with gso_size and hdr_len",
			tcp4, 66, 60000, true,
			Header{Flags: HdrFlagNeedsCsum, GSOType: GSOTCPv4, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16},
		},
		{
			"large TCPv6 segment: TSO",
			tcp6, 86, 30000, true,
			Header{Flags: HdrFlagNeedsCsum, GSOType: GSOTCPv6, HdrLen: 86, GSOSize: 1428, CsumStart: 54, CsumOffset: 16},
		},
		{
			"checksum offload not negotiated: no NEEDS_CSUM",
			tcp4, 66, 100, false,
			Header{},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := txHeader(&tt.gso, tt.hdrSize, tt.dataSize, tt.csum); got != tt.want {
				t.Fatalf("txHeader = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMarkECNOnlyForTSOWithCWR(t *testing.T) {
	frame := make([]byte, 20)
	frame[13] = uint8(header.TCPFlagCwr | header.TCPFlagAck)
	for _, tt := range []struct {
		name  string
		hdr   Header
		frame []byte
		want  uint8
	}{
		{"TSO with CWR gets ECN", Header{GSOType: GSOTCPv4, CsumStart: 34}, frame, GSOTCPv4 | GSOECN},
		{"TSO without CWR unchanged", Header{GSOType: GSOTCPv4, CsumStart: 34}, make([]byte, 20), GSOTCPv4},
		{"non-TSO unchanged", Header{CsumStart: 34}, frame, GSONone},
		{"truncated TCP header ignored", Header{GSOType: GSOTCPv6}, frame[:10], GSOTCPv6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.hdr
			markECN(&h, tt.frame)
			if h.GSOType != tt.want {
				t.Fatalf("GSOType = %#x, want %#x", h.GSOType, tt.want)
			}
		})
	}
}

func TestRxChecksumValidated(t *testing.T) {
	for _, tt := range []struct {
		name      string
		flags     uint8
		guestCsum bool
		want      bool
	}{
		{"DATA_VALID with GUEST_CSUM", HdrFlagDataValid, true, true},
		{"NEEDS_CSUM with GUEST_CSUM", HdrFlagNeedsCsum, true, true},
		{"no flags", 0, true, false},
		{"DATA_VALID without GUEST_CSUM is not trusted", HdrFlagDataValid, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := Header{Flags: tt.flags}
			if got := rxChecksumValidated(&h, tt.guestCsum); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
