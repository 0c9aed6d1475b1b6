package pcitest

import (
	"encoding/binary"
	"sync"
)

// Region is a device's registers behind a BAR. Offsets are from the start
// of the BAR; width is 1, 2, 4 or 8 bytes. Implementations must be safe for
// concurrent use if the test uses them from several goroutines.
type Region interface {
	Read(off uint64, width int) uint64
	Write(off uint64, width int, v uint64)
}

// Memory is a Region of plain little-endian storage.
type Memory struct {
	// mu guards b.
	mu sync.Mutex
	// b holds the contents.
	b []byte
}

// NewMemory returns size bytes of zeroed storage.
func NewMemory(size int) *Memory { return &Memory{b: make([]byte, size)} }

// Read implements Region. Out-of-range reads return all ones.
func (m *Memory) Read(off uint64, width int) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+uint64(width) > uint64(len(m.b)) {
		return ^uint64(0) >> (64 - 8*width)
	}
	return getLE(m.b[off:], width)
}

// Write implements Region. Out-of-range writes are dropped.
func (m *Memory) Write(off uint64, width int, v uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+uint64(width) > uint64(len(m.b)) {
		return
	}
	putLE(m.b[off:], width, v)
}

// Bytes returns a copy of the contents.
func (m *Memory) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b...)
}

func getLE(b []byte, width int) uint64 {
	switch width {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	default:
		return binary.LittleEndian.Uint64(b)
	}
}

func putLE(b []byte, width int, v uint64) {
	switch width {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// Window places a Region at an offset inside a Mux.
type Window struct {
	// Off is where the region starts in the BAR.
	Off uint64
	// Size is how many bytes it covers.
	Size uint64
	// Region receives accesses, at offsets relative to Off.
	Region Region
}

// Mux lays several regions out in one BAR. Accesses outside every window
// read all ones and are dropped, as on a real device.
type Mux []Window

// Read implements Region.
func (x Mux) Read(off uint64, width int) uint64 {
	for _, w := range x {
		if off >= w.Off && off+uint64(width) <= w.Off+w.Size {
			return w.Region.Read(off-w.Off, width)
		}
	}
	return ^uint64(0) >> (64 - 8*width)
}

// Write implements Region.
func (x Mux) Write(off uint64, width int, v uint64) {
	for _, w := range x {
		if off >= w.Off && off+uint64(width) <= w.Off+w.Size {
			w.Region.Write(off-w.Off, width, v)
			return
		}
	}
}
