package virtionet

import (
	"unsafe"

	"gvisor.dev/gvisor/pkg/buffer"
)

// pageSize is the size of one RX buffer and the granularity at which Go heap
// memory is physically contiguous.
const pageSize = 4096

// chunkBytes returns the whole chunk behind v, whatever v's read and write
// indices: the memory posted to the device. The driver owns v (and it is the
// only reference to the chunk) whenever it does this.
func chunkBytes(v *buffer.View) []byte {
	return unsafe.Slice(v.BasePtr(), v.Capacity())
}

// pageRemain is how many bytes of b lie before the next 4096-byte boundary
// of its virtual address: the longest prefix Phys can translate, since Go
// heap pages are only virtually contiguous.
func pageRemain(b []byte) int {
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (pageSize - 1))
	return pageSize - off
}
