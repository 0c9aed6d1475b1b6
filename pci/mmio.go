package pci

// MMIO accesses a window of device registers at byte offsets from the
// window's start. Accesses are uncached, not merged or reordered with each
// other, and little-endian, as PCI registers are. The runtime returns one
// from Mapper.MapMMIO; PortRegion presents an I/O BAR the same way.
//
// Offsets are the caller's responsibility: this package only uses offsets
// it has checked against the size it mapped.
type MMIO interface {
	Read8(off uint64) uint8
	Read16(off uint64) uint16
	Read32(off uint64) uint32
	Read64(off uint64) uint64
	Write8(off uint64, v uint8)
	Write16(off uint64, v uint16)
	Write32(off uint64, v uint32)
	Write64(off uint64, v uint64)
}

// Mapper makes memory-mapped device registers reachable. The runtime
// implements it with an uncached mapping of the physical range.
type Mapper interface {
	// MapMMIO maps size bytes of registers at physical address phys.
	// The range need not be page aligned.
	MapMMIO(phys, size uint64) (MMIO, error)
}

// PortRegion presents a range of I/O ports (an I/O BAR) through the MMIO
// interface, so that register code works the same over either kind of BAR.
// 64-bit accesses are split into two 32-bit accesses, low half first: the
// I/O space has nothing wider.
type PortRegion struct {
	// IO performs the accesses.
	IO PortIO
	// Base is the first port of the region.
	Base uint16
	// Size is the number of ports in the region.
	Size uint16
}

var _ MMIO = (*PortRegion)(nil)

func (r *PortRegion) port(off uint64) uint16 { return r.Base + uint16(off) }

// Read8 implements MMIO.
func (r *PortRegion) Read8(off uint64) uint8 { return r.IO.In8(r.port(off)) }

// Read16 implements MMIO.
func (r *PortRegion) Read16(off uint64) uint16 { return r.IO.In16(r.port(off)) }

// Read32 implements MMIO.
func (r *PortRegion) Read32(off uint64) uint32 { return r.IO.In32(r.port(off)) }

// Read64 implements MMIO as two 32-bit reads, low half first.
func (r *PortRegion) Read64(off uint64) uint64 {
	lo := r.IO.In32(r.port(off))
	return uint64(lo) | uint64(r.IO.In32(r.port(off+4)))<<32
}

// Write8 implements MMIO.
func (r *PortRegion) Write8(off uint64, v uint8) { r.IO.Out8(r.port(off), v) }

// Write16 implements MMIO.
func (r *PortRegion) Write16(off uint64, v uint16) { r.IO.Out16(r.port(off), v) }

// Write32 implements MMIO.
func (r *PortRegion) Write32(off uint64, v uint32) { r.IO.Out32(r.port(off), v) }

// Write64 implements MMIO as two 32-bit writes, low half first.
func (r *PortRegion) Write64(off uint64, v uint64) {
	r.IO.Out32(r.port(off), uint32(v))
	r.IO.Out32(r.port(off+4), uint32(v>>32))
}
