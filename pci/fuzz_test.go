package pci_test

import (
	"encoding/binary"
	"testing"

	"github.com/govirtio/govirtio/pci"
)

// rawConfig is a ConfigSpace of one function at 00:00.0 whose 256 bytes
// come straight from the fuzzer, with BAR registers that store only the
// bits of a fuzzer-chosen mask (what sizing reads back).
type rawConfig struct {
	// cfg is the configuration space.
	cfg [256]byte
	// masks are the BAR address masks.
	masks [6]uint32
}

func (c *rawConfig) Read32(a pci.Address, off uint16) uint32 {
	if a != (pci.Address{}) || off >= 256 {
		return 0xFFFFFFFF
	}
	return binary.LittleEndian.Uint32(c.cfg[off&^3:])
}

func (c *rawConfig) Write32(a pci.Address, off uint16, v uint32) {
	if a != (pci.Address{}) || off >= 256 {
		return
	}
	off &^= 3
	if off >= 0x10 && off < 0x28 {
		i := (off - 0x10) / 4
		old := binary.LittleEndian.Uint32(c.cfg[off:])
		v = v&c.masks[i] | old&^c.masks[i]
	}
	binary.LittleEndian.PutUint32(c.cfg[off:], v)
}

// boundedMMIO is an MMIO of a given size that fails the test on any
// access past it.
type boundedMMIO struct {
	t    *testing.T
	size uint64
}

func (b boundedMMIO) check(off uint64, n uint64) {
	if off+n > b.size || off+n < off {
		b.t.Fatalf("access at %#x width %d past a %#x-byte mapping", off, n, b.size)
	}
}
func (b boundedMMIO) Read8(off uint64) uint8       { b.check(off, 1); return 0 }
func (b boundedMMIO) Read16(off uint64) uint16     { b.check(off, 2); return 0 }
func (b boundedMMIO) Read32(off uint64) uint32     { b.check(off, 4); return 0 }
func (b boundedMMIO) Read64(off uint64) uint64     { b.check(off, 8); return 0 }
func (b boundedMMIO) Write8(off uint64, _ uint8)   { b.check(off, 1) }
func (b boundedMMIO) Write16(off uint64, _ uint16) { b.check(off, 2) }
func (b boundedMMIO) Write32(off uint64, _ uint32) { b.check(off, 4) }
func (b boundedMMIO) Write64(off uint64, _ uint64) { b.check(off, 8) }

type boundedMapper struct{ t *testing.T }

func (m boundedMapper) MapMMIO(phys, size uint64) (pci.MMIO, error) {
	return boundedMMIO{t: m.t, size: size}, nil
}

// FuzzConfigSpace feeds arbitrary configuration space to everything that
// parses it: no panic, no hang, no access outside what was mapped.
func FuzzConfigSpace(f *testing.F) {
	// Seed: a virtio-net-like function with MSI-X and a vendor capability.
	seed := make([]byte, 256+24)
	binary.LittleEndian.PutUint32(seed[0:], 0x10411AF4)
	seed[0x06] = 0x10 // capability list
	binary.LittleEndian.PutUint32(seed[0x14:], 0xFEBD1000)
	binary.LittleEndian.PutUint32(seed[0x20:], 0xFE00000C)
	seed[0x34] = 0x40
	seed[0x40], seed[0x41] = 0x11, 0x50 // MSI-X, next 0x50
	binary.LittleEndian.PutUint16(seed[0x42:], 2)
	binary.LittleEndian.PutUint32(seed[0x44:], 1)
	binary.LittleEndian.PutUint32(seed[0x48:], 0x801)
	seed[0x50], seed[0x51], seed[0x52] = 0x09, 0x00, 0x10
	binary.LittleEndian.PutUint32(seed[256+4:], 0xFFFFF000)
	binary.LittleEndian.PutUint32(seed[256+16:], 0xFFFFC000)
	binary.LittleEndian.PutUint32(seed[256+20:], 0xFFFFFFFF)
	f.Add(seed)
	// Seed: the same with the vendor capability pointing back to MSI-X.
	loop := append([]byte(nil), seed...)
	loop[0x51] = 0x40
	f.Add(loop)

	f.Fuzz(func(t *testing.T, data []byte) {
		c := &rawConfig{}
		copy(c.cfg[:], data)
		if len(data) > 256 {
			for i := range c.masks {
				var m [4]byte
				copy(m[:], data[min(len(data), 256+4*i):])
				c.masks[i] = binary.LittleEndian.Uint32(m[:])
			}
		}
		d, err := pci.Open(c, pci.Address{})
		if d == nil {
			return
		}
		_ = err
		d.Capabilities()
		vcs, _ := d.VendorCapabilities()
		for _, v := range vcs {
			for off := 0; off < 256; off += 3 {
				v.Read32(d, uint8(off))
			}
		}
		d.BARs()
		if msi, err := d.MSI(); err == nil {
			msi.Program(0xFEE00000, 0x41)
			msi.SetMasked(0, true)
			msi.SetEnabled(true)
		}
		if x, err := d.MSIX(); err == nil {
			if x.TableSize < 1 || x.TableSize > 2048 {
				t.Fatalf("table size %d", x.TableSize)
			}
			if err := x.Map(boundedMapper{t}); err == nil {
				for i := 0; i < x.TableSize; i++ {
					x.SetEntry(i, 0xFEE00000, uint32(i), false)
					x.Pending(i)
				}
				x.SetEnabled(true)
			}
		}
	})
}
