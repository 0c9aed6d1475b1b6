package virtqueue

import "unsafe"

// pageAligned returns size bytes of fresh zeroed Go memory starting on a
// 4096-byte boundary, carved from a larger allocation. Go's heap never
// moves objects, so the alignment holds for the memory's life.
func pageAligned(size int) []byte {
	raw := make([]byte, size+pageSize)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & (pageSize - 1))
	return raw[off : off+size : off+size]
}

// addrOf is the virtual address of b[0]; only compared and hashed, never
// turned back into a pointer (the region's slice is what reaches memory).
func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
