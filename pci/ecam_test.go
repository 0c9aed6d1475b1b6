package pci_test

import (
	"errors"
	"testing"

	"github.com/govirtio/govirtio/pci"
)

// recordingMMIO is an MMIO that records offsets and answers reads with
// the offset itself.
type recordingMMIO struct {
	// offs are the offsets accessed, in order.
	offs []uint64
}

func (r *recordingMMIO) rec(off uint64) uint64        { r.offs = append(r.offs, off); return off }
func (r *recordingMMIO) Read8(off uint64) uint8       { return uint8(r.rec(off)) }
func (r *recordingMMIO) Read16(off uint64) uint16     { return uint16(r.rec(off)) }
func (r *recordingMMIO) Read32(off uint64) uint32     { return uint32(r.rec(off)) }
func (r *recordingMMIO) Read64(off uint64) uint64     { return r.rec(off) }
func (r *recordingMMIO) Write8(off uint64, _ uint8)   { r.rec(off) }
func (r *recordingMMIO) Write16(off uint64, _ uint16) { r.rec(off) }
func (r *recordingMMIO) Write32(off uint64, _ uint32) { r.rec(off) }
func (r *recordingMMIO) Write64(off uint64, _ uint64) { r.rec(off) }

// windowMapper hands out one recordingMMIO and remembers the request.
type windowMapper struct {
	// phys and size are the last request.
	phys, size uint64
	// r is the window handed out.
	r *recordingMMIO
}

func (m *windowMapper) MapMMIO(phys, size uint64) (pci.MMIO, error) {
	m.phys, m.size = phys, size
	m.r = &recordingMMIO{}
	return m.r, nil
}

func TestECAMOffsets(t *testing.T) {
	m := &windowMapper{}
	e, err := pci.NewECAM(m, 0xB0000000, 0, 255)
	if err != nil {
		t.Fatal(err)
	}
	if m.phys != 0xB0000000 || m.size != 256<<20 {
		t.Fatalf("mapped %#x+%#x", m.phys, m.size)
	}
	tests := []struct {
		name   string
		access func()
		want   []uint64
	}{
		{"dword of 00:00.0", func() { e.Read32(pci.Address{}, 0) }, []uint64{0}},
		{"bus device function fields", func() { e.Read32(pci.Address{Bus: 3, Device: 31, Function: 7}, 0x100) }, []uint64{3<<20 | 31<<15 | 7<<12 | 0x100}},
		{"extended space reachable", func() { e.Write32(pci.Address{Bus: 1}, 0xFFC, 0) }, []uint64{1<<20 | 0xFFC}},
		{"byte keeps its offset", func() { e.Read8(pci.Address{Device: 1}, 0x0E) }, []uint64{1<<15 | 0x0E}},
		{"past 4 KiB reads nothing", func() { e.Read32(pci.Address{}, 0x1000) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.r.offs = nil
			tt.access()
			if len(m.r.offs) != len(tt.want) || (len(tt.want) == 1 && m.r.offs[0] != tt.want[0]) {
				t.Fatalf("offsets %#x, want %#x", m.r.offs, tt.want)
			}
		})
	}
}

func TestECAMBusWindow(t *testing.T) {
	m := &windowMapper{}
	e, err := pci.NewECAM(m, 0xE0000000, 16, 31)
	if err != nil {
		t.Fatal(err)
	}
	if m.size != 16<<20 {
		t.Fatalf("mapped %#x bytes for 16 buses", m.size)
	}
	if v := e.Read32(pci.Address{Bus: 15}, 0); v != 0xFFFFFFFF || len(m.r.offs) != 0 {
		t.Fatalf("bus below the window: %#x, %d accesses", v, len(m.r.offs))
	}
	e.Read32(pci.Address{Bus: 17, Device: 1}, 4)
	if m.r.offs[0] != 1<<20|1<<15|4 {
		t.Fatalf("offset %#x", m.r.offs[0])
	}
	if _, err := pci.NewECAM(m, 0, 5, 4); !errors.Is(err, pci.ErrOutOfRange) {
		t.Fatalf("inverted bus range: err = %v", err)
	}
}
