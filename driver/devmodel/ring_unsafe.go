package devmodel

import (
	"sync/atomic"
	"unsafe"
)

// The ring indices and event fields are 16-bit values shared with the
// driver, which runs in other goroutines. Go has no 16-bit atomics, so each
// is accessed through the aligned 32-bit word that contains it; on a
// little-endian host the field at byte offset 2 is the word's upper half.
// Plain accesses to the descriptors and ring entries are ordered by these
// atomics (acquire on avail.idx, release on used.idx), as virtio 1.2 §2.7.13
// requires of real memory barriers.

// wordOf returns the aligned 32-bit word holding b[off:off+2] and the shift of
// the field within it. ring set-up checks that b starts 4-byte aligned.
func wordOf(b []byte, off int) (*uint32, uint) {
	p := unsafe.Pointer(unsafe.SliceData(b))
	w := unsafe.Add(p, off&^3)
	return (*uint32)(w), uint(off&2) * 8
}

// load16 atomically reads the little-endian 16-bit field at b[off].
func load16(b []byte, off int) uint16 {
	w, shift := wordOf(b, off)
	return uint16(atomic.LoadUint32(w) >> shift)
}

// store16 atomically replaces the 16-bit field at b[off], leaving the other
// half of its word (which the other side may own) untouched.
func store16(b []byte, off int, v uint16) {
	w, shift := wordOf(b, off)
	mask := uint32(0xffff) << shift
	for {
		old := atomic.LoadUint32(w)
		nw := old&^mask | uint32(v)<<shift
		if old == nw || atomic.CompareAndSwapUint32(w, old, nw) {
			return
		}
	}
}

// aligned4 reports whether b starts on a 4-byte boundary in host memory.
func aligned4(b []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&3 == 0
}

// load32 atomically reads the little-endian 32-bit word at b[off]
// (4-aligned within b, which starts 4-byte aligned).
func load32(b []byte, off int) uint32 {
	w, _ := wordOf(b[off:off+4:off+4], 0)
	return atomic.LoadUint32(w)
}

// store32 atomically writes the little-endian 32-bit word at b[off]: a
// packed ring's id and flags, handed over in one store.
func store32(b []byte, off int, v uint32) {
	w, _ := wordOf(b[off:off+4:off+4], 0)
	atomic.StoreUint32(w, v)
}
