package virtiopci

import (
	"encoding/binary"

	"github.com/govirtio/govirtio/pci"
)

// readFields reads b from the device configuration at base+off with the
// access widths the fields need (virtio 1.2 §4.1.3.1: 8-bit fields by
// 8-bit accesses, 16- and 32-bit fields by aligned accesses of their size,
// 64-bit fields by two 32-bit accesses). A caller reads one field at a
// time, so the length says the width: 1, 2 and 4 bytes aligned are one
// access, 8 bytes aligned two 32-bit ones, anything else (a MAC address,
// an unaligned range) byte by byte.
func readFields(r pci.MMIO, base uint64, off int, b []byte) {
	o := base + uint64(off)
	switch {
	case len(b) == 1:
		b[0] = r.Read8(o)
	case len(b) == 2 && o%2 == 0:
		binary.LittleEndian.PutUint16(b, r.Read16(o))
	case len(b) == 4 && o%4 == 0:
		binary.LittleEndian.PutUint32(b, r.Read32(o))
	case len(b) == 8 && o%4 == 0:
		binary.LittleEndian.PutUint32(b, r.Read32(o))
		binary.LittleEndian.PutUint32(b[4:], r.Read32(o+4))
	default:
		for i := range b {
			b[i] = r.Read8(o + uint64(i))
		}
	}
}

// writeFields is readFields for writes.
func writeFields(r pci.MMIO, base uint64, off int, b []byte) {
	o := base + uint64(off)
	switch {
	case len(b) == 1:
		r.Write8(o, b[0])
	case len(b) == 2 && o%2 == 0:
		r.Write16(o, binary.LittleEndian.Uint16(b))
	case len(b) == 4 && o%4 == 0:
		r.Write32(o, binary.LittleEndian.Uint32(b))
	case len(b) == 8 && o%4 == 0:
		r.Write32(o, binary.LittleEndian.Uint32(b))
		r.Write32(o+4, binary.LittleEndian.Uint32(b[4:]))
	default:
		for i := range b {
			r.Write8(o+uint64(i), b[i])
		}
	}
}
