package kernel

import "unsafe"

// physOffset is where physical address 0 appears in the kernel's view:
// 0 on the machine (RAM is identity-mapped); host-side tests point it at
// an arena that stands in for RAM.
var physOffset uint64

// physPtr returns a pointer to physical address p through the identity map
// that covers all RAM. (The conversion goes through memory so that vet's
// unsafeptr check, meant for Go heap addresses, stays quiet: these are
// addresses no Go allocator owns.)
func physPtr(p uint64) unsafe.Pointer {
	p += physOffset
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}

// virtPtr returns a pointer to the program's virtual address va (the
// kernel shares the program's address space).
func virtPtr(va uint64) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&va))
}

// physBytes returns n bytes at physical (identity-mapped) address p.
func physBytes(p uint64, n int) []byte {
	return unsafe.Slice((*byte)(physPtr(p)), n)
}

// physTable returns the page table stored at physical address p.
func physTable(p uint64) *[512]uint64 {
	return (*[512]uint64)(physPtr(p))
}

// userBytes returns n bytes of the program's memory at virtual address va.
// The caller has checked the range with userRange.
func userBytes(va uint64, n int) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(virtPtr(va)), n)
}

// addrOf returns the address of a kernel object as a number.
func addrOf(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

// unsafePointer is unsafe.Pointer for the user-side crash report.
func unsafePointer(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }

// xsaveArea returns n bytes of thread t's XSAVE area (kernel memory).
func xsaveArea(t *thread, n int) []byte {
	return unsafe.Slice((*byte)(virtPtr(uint64(t.xsave))), n)
}

// vdsoBytes is the vDSO image as bytes.
func vdsoBytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&vdsoImage[0])), vdsoSize)
}
