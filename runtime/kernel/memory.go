package kernel

import (
	"unsafe"

	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
	"github.com/govirtio/govirtio/runtime/mem"
)

// Address-space layout. The image is identity-mapped (it runs at its link
// addresses); all RAM and the device registers in use are also mapped at
// directMapBase+phys (the direct map, in the upper canonical half), which
// is how the kernel reaches page tables and frames and how programs reach
// DMA memory and registers. The program's mmap regions live in
// [userLow, userHigh). Everything else is unmapped, so a wild pointer
// faults.
const (
	directMapBase = 0xffff_8000_0000_0000
	userLow       = 0x0000_0080_0000_0000 // 512 GiB
	userHigh      = 0x0000_7fff_ffff_f000 // top of the lower canonical half
	lowMem        = 1 << 20               // below this: BIOS, option ROMs, boot data
	maxPhys       = 64 << 30              // RAM the frame bitmap can cover
	stackTop      = userHigh              // the first thread's stack grows down from here
	stackLen      = 8 << 20
)

var (
	frames    mem.Frames
	pageTable mem.PageTable
	space     mem.Space
	// bitmapStore backs the frame bitmap: one bit per 4 KiB of maxPhys.
	bitmapStore [maxPhys / mem.PageSize / 64]uint64
	// ramTop is the end of the highest RAM range.
	ramTop uint64
)

// imageEnd returns the physical address just past the loaded image (the
// linker's end of bss).
func imageEnd() uint64

// imageStart returns the lowest loaded address (the ELF header's page).
func imageStart() uint64

// initMemory sets up the frame allocator from the PVH memory map, the
// kernel page tables (identity map of RAM, page 0 left unmapped so that
// nil dereferences fault) and the empty user address space.
func initMemory() {
	if boot.nmem == 0 {
		console.Print("kernel: no PVH memory map; assuming 64 MiB\n")
		boot.memmap[0] = memmapEntry{Addr: 0, Size: 64 << 20, Type: e820RAM}
		boot.nmem = 1
	}
	// The bitmap covers the highest RAM address in the memory map, so
	// that the allocator never scans (nor touches) the rest of it.
	top := uint64(0)
	for i := 0; i < boot.nmem; i++ {
		if e := boot.memmap[i]; e.Type == e820RAM && e.Addr+e.Size > top {
			top = e.Addr + e.Size
		}
	}
	words := (top/mem.PageSize + 63) / 64
	if words == 0 || words > uint64(len(bitmapStore)) {
		words = uint64(len(bitmapStore))
	}
	frames.Init(bitmapStore[:words])
	for i := 0; i < boot.nmem; i++ {
		e := boot.memmap[i]
		if e.Type != e820RAM {
			continue
		}
		frames.AddRange(e.Addr, e.Addr+e.Size)
		if e.Addr+e.Size > ramTop {
			ramTop = e.Addr + e.Size
		}
	}
	// The image's code and data must be in RAM; its bss may run past the
	// end (its pages there are backed on demand, see releaseZeroBSS).
	// _rt0_pvh has checked this, and more, before touching memory; this
	// and releaseZeroBSS's check stay for a loader without a memory map.
	if bssStart() > ramTop {
		console.Print("kernel: the image does not fit in RAM: give the machine more memory (-m)\n")
		exitQEMU(3)
	}
	frames.Reserve(0, lowMem)
	frames.Reserve(imageStart(), imageEnd())

	if err := pageTable.Init(&frames, physTable); err != nil {
		panicKernel("page table", 0)
	}
	for i := 0; i < boot.nmem; i++ {
		e := boot.memmap[i]
		if e.Type != e820RAM {
			continue
		}
		start := e.Addr &^ (mem.PageSize - 1)
		end := (e.Addr + e.Size + mem.PageSize - 1) &^ (mem.PageSize - 1)
		if err := pageTable.MapRange(directMapBase+start, start, end-start, mem.PTEWrite|mem.PTEGlobal|noExec()); err != nil {
			panicKernel("direct map", start)
		}
	}
	// The image, at its link addresses, in 4 KiB pages so that
	// releaseZeroBSS can give back single pages (bss past the end of RAM
	// is left to demand paging).
	is, ie := imageStart(), (imageEnd()+mem.PageSize-1)&^(mem.PageSize-1)
	for a := is; a < ie && a < ramTop; a += mem.PageSize {
		if err := pageTable.Map(a, a, mem.PTEWrite|mem.PTEGlobal); err != nil {
			panicKernel("image map", a)
		}
	}
	cpu.WriteCR3(pageTable.Root)
	physOffset = directMapBase // from now on physPtr goes through the direct map
	space.Init(userLow, userHigh)
}

// mapDevice maps [phys, phys+size) uncached into the direct map, for
// device registers (LAPIC, IOAPIC, PCI BARs).
func mapDevice(phys, size uint64) error {
	start := phys &^ (mem.PageSize - 1)
	end := (phys + size + mem.PageSize - 1) &^ (mem.PageSize - 1)
	for a := start; a < end; a += mem.PageSize {
		if err := pageTable.Map(directMapBase+a, a, mem.PTEWrite|mem.PTENoCache|mem.PTEWriteThr|noExec()); err != nil {
			return err
		}
		invalidatePage(uintptr(directMapBase + a))
	}
	return nil
}

// allocZeroed takes a frame and clears it.
func allocZeroed() (uint64, bool) {
	p, err := frames.Alloc()
	if err != nil {
		return 0, false
	}
	clear((*[mem.PageSize]byte)(physPtr(p))[:])
	return p, true
}

// pteFlags turns region protection into leaf flags.
func pteFlags(prot uint8) uint64 {
	f := uint64(0)
	if prot&mem.ProtWrite != 0 {
		f |= mem.PTEWrite
	}
	if prot&mem.ProtExec == 0 {
		f |= noExec()
	}
	return f
}

// noExec is the no-execute bit when the CPU has it.
func noExec() uint64 {
	if nxEnabled {
		return mem.PTENoExec
	}
	return 0
}

// The image's bss is zero when QEMU loads it, and most of it may never be
// touched (Go 1.26 links a 32 MiB bss buffer into every program that uses
// crypto/rand, for instance). At boot the kernel gives back the frames of
// every bss page still zero; the first touch, by the program or by the
// kernel itself, maps a fresh zero page there instead.
var lazyLo, lazyHi uint64 // the page-aligned part of bss that is demand-zero

func bssStart() uint64

func inLazyBSS(va uint64) bool { return va >= lazyLo && va < lazyHi }

// releaseZeroBSS unmaps and frees the bss pages that are all zero, except
// those the trap path touches before it can take a fault (the kernel
// stacks, the XSAVE areas, the thread table).
func releaseZeroBSS() {
	lazyLo, lazyHi = lazyBSSRange()
	keep := residentBSS()
	for _, k := range keep {
		if k[0]+k[1] > ramTop {
			console.Print("kernel: the kernel's own data does not fit in RAM: give the machine more memory (-m)\n")
			exitQEMU(3)
		}
	}
page:
	for p := lazyLo; p < lazyHi && p < ramTop; p += mem.PageSize {
		for _, k := range keep {
			if p+mem.PageSize > k[0] && p < k[0]+k[1] {
				continue page
			}
		}
		words := (*[mem.PageSize / 8]uint64)(virtPtr(p))
		for _, w := range words {
			if w != 0 {
				continue page
			}
		}
		frame, ok, err := pageTable.Unmap(p)
		if err != nil || !ok {
			continue
		}
		invalidatePage(uintptr(p))
		frames.Release(frame)
	}
}

// lazyBSSRange is the page-aligned part of the bss that becomes demand-zero.
func lazyBSSRange() (lo, hi uint64) {
	return (bssStart() + mem.PageSize - 1) &^ (mem.PageSize - 1), imageEnd() &^ (mem.PageSize - 1)
}

// zeroBSSEstimate is about how many bytes releaseZeroBSS will give back:
// the pages of the lazy bss range that RAM backs, less those kept
// resident. The kernel's other variables there are counted too (a few
// hundred KiB, still resident); the program's are all zero before it runs.
func zeroBSSEstimate() uint64 {
	lo, hi := lazyBSSRange()
	hi = min(hi, ramTop)
	if hi <= lo {
		return 0
	}
	n := hi - lo
	for _, k := range residentBSS() {
		if a, b := max(k[0]&^(mem.PageSize-1), lo), min(k[0]+k[1], hi); a < b {
			n -= min(n, (b-a+mem.PageSize-1)&^(mem.PageSize-1))
		}
	}
	return n
}

// residentBSS lists what the trap entry and exit (assembly) and the
// nested-fault path (trap -> faultIn -> allocZeroed) touch: it must stay
// resident, since a fault there could not be taken.
func residentBSS() [22][2]uint64 {
	k := func(p unsafe.Pointer, n uintptr) [2]uint64 { return [2]uint64{addrOf(p), uint64(n)} }
	return [...][2]uint64{
		k(unsafe.Pointer(&kernelStacks), unsafe.Sizeof(kernelStacks)),
		k(unsafe.Pointer(&xsaveStore), unsafe.Sizeof(xsaveStore)),
		k(unsafe.Pointer(&threads), unsafe.Sizeof(threads)),
		k(unsafe.Pointer(&kernelTLS), unsafe.Sizeof(kernelTLS)),
		k(unsafe.Pointer(&kernelG), unsafe.Sizeof(kernelG)),
		k(unsafe.Pointer(&kernelFS), unsafe.Sizeof(kernelFS)),
		k(unsafe.Pointer(&trapStackTop), unsafe.Sizeof(trapStackTop)),
		k(unsafe.Pointer(&syscallSP), unsafe.Sizeof(syscallSP)),
		k(unsafe.Pointer(&trapDepth), unsafe.Sizeof(trapDepth)),
		k(unsafe.Pointer(&scratchAX), unsafe.Sizeof(scratchAX)),
		k(unsafe.Pointer(&scratchBX), unsafe.Sizeof(scratchBX)),
		k(unsafe.Pointer(&nestedXsave), unsafe.Sizeof(nestedXsave)),
		k(unsafe.Pointer(&curXsave), unsafe.Sizeof(curXsave)),
		k(unsafe.Pointer(&curFS), unsafe.Sizeof(curFS)),
		k(unsafe.Pointer(&xcr0), unsafe.Sizeof(xcr0)),
		k(unsafe.Pointer(&physOffset), unsafe.Sizeof(physOffset)),
		k(unsafe.Pointer(&frames), unsafe.Sizeof(frames)),
		k(unsafe.Pointer(&pageTable), unsafe.Sizeof(pageTable)),
		k(unsafe.Pointer(&lazyLo), unsafe.Sizeof(lazyLo)),
		k(unsafe.Pointer(&lazyHi), unsafe.Sizeof(lazyHi)),
		k(unsafe.Pointer(&nxEnabled), unsafe.Sizeof(nxEnabled)),
		k(unsafe.Pointer(&bitmapStore), uintptr(frames.Limit()/mem.PageSize/8)),
	}
}

// faultIn backs the page holding va if a region allows the access. It
// reports false for an address the program may not touch (a SIGSEGV).
func faultIn(va uint64, write bool) (ok bool, accessErr bool) {
	if inLazyBSS(va) {
		if _, _, mapped := pageTable.Lookup(va &^ (mem.PageSize - 1)); !mapped {
			frame, got := allocZeroed()
			if !got {
				console.Print("kernel: out of memory backing a bss page\n")
				exitQEMU(3)
			}
			pageTable.Map(va&^(mem.PageSize-1), frame, mem.PTEWrite|mem.PTEGlobal|noExec())
		}
		return true, false
	}
	prot, found := space.Find(va)
	if !found {
		return false, false
	}
	if prot == 0 || (write && prot&mem.ProtWrite == 0) {
		return false, true
	}
	page := va &^ (mem.PageSize - 1)
	if _, _, mapped := pageTable.Lookup(page); mapped {
		// Present already (another path mapped it): a protection fault
		// on a page whose region allows the access cannot happen, so just
		// retry.
		return true, false
	}
	frame, got := allocZeroed()
	if !got {
		console.Print("kernel: out of memory backing a page\n")
		exitQEMU(3)
	}
	if err := pageTable.Map(page, frame, pteFlags(prot)); err != nil {
		frames.Release(frame)
		return false, false
	}
	return true, false
}

// userRange checks that the program may access [va, va+n) (writing when
// write is set) and backs every page of it, so that the kernel can then
// touch it without faulting.
func userRange(va, n uint64, write bool) bool {
	if n == 0 {
		return true
	}
	if va+n < va || va < mem.PageSize {
		return false
	}
	for p := va &^ (mem.PageSize - 1); p < va+n; p += mem.PageSize {
		if _, flags, mapped := pageTable.Lookup(p); mapped {
			if write && flags&mem.PTEWrite == 0 {
				return false
			}
			continue
		}
		// Not mapped: must be a backed-on-demand user page. Kernel
		// addresses (identity map) are always mapped, so this is user.
		if ok, _ := faultIn(p, write); !ok {
			return false
		}
	}
	return true
}

// releaseRange drops the frames behind [start, end) so that the next touch
// finds fresh zeroes (munmap, MADV_DONTNEED, MAP_FIXED over old memory).
func releaseRange(start, end uint64) {
	for p := start &^ (mem.PageSize - 1); p < end; p += mem.PageSize {
		if p < userLow {
			continue
		}
		frame, ok, err := pageTable.Unmap(p)
		if err != nil || !ok {
			continue
		}
		invalidatePage(uintptr(p))
		frames.Release(frame)
	}
}

// invalidatePage drops a stale TLB entry after a page-table change
// (host-side tests replace it: INVLPG is privileged).
var invalidatePage = cpu.Invlpg

// mmap flags (include/uapi/linux/mman.h).
const (
	mapShared         = 0x01
	mapPrivate        = 0x02
	mapFixed          = 0x10
	mapAnonymous      = 0x20
	mapFixedNoReplace = 0x100000
	madvDontneed      = 4
	madvFree          = 8
)

func pageRound(n uint64) uint64 { return (n + mem.PageSize - 1) &^ (mem.PageSize - 1) }

func sysMmapAnon(addr, length, prot, flags uint64, _ int64) int64 {
	if flags&mapAnonymous == 0 { // fd is ignored for anonymous maps, as Linux does
		return -eNODEV // files cannot be mapped
	}
	if length == 0 || addr%mem.PageSize != 0 {
		return -eINVAL
	}
	length = pageRound(length)
	if length == 0 {
		return -eNOMEM
	}
	p := uint8(prot & 7)
	switch {
	case flags&mapFixed != 0:
		releaseRange(addr, addr+length)
	case flags&mapFixedNoReplace != 0:
		a, err := space.Choose(addr, length)
		if err != nil || a != addr {
			return -eEXIST
		}
	default:
		a, err := space.Choose(addr, length)
		if err != nil {
			return -eNOMEM
		}
		addr = a
	}
	if err := space.Insert(addr, length, p); err != nil {
		if err == mem.ErrTooMany {
			return -eNOMEM
		}
		return -eINVAL
	}
	return int64(addr)
}

func sysMunmapRange(addr, length uint64) int64 {
	if addr%mem.PageSize != 0 || length == 0 {
		return -eINVAL
	}
	length = pageRound(length)
	if addr < userLow || addr+length > userHigh || addr+length < addr {
		return -eINVAL
	}
	releaseRange(addr, addr+length)
	space.Remove(addr, length)
	return 0
}

func sysMadviseRange(addr, length, advice uint64) int64 {
	if addr%mem.PageSize != 0 {
		return -eINVAL
	}
	switch advice {
	case madvDontneed, madvFree:
		// Go 1.26 relies on DONTNEED zeroing: drop the frames so that
		// the next touch maps fresh zeroes.
		end := addr + pageRound(length)
		if addr >= userLow && end <= userHigh && end >= addr {
			releaseRange(addr, end)
		}
	}
	return 0
}

func sysMprotectRange(addr, length, prot uint64) int64 {
	if addr%mem.PageSize != 0 {
		return -eINVAL
	}
	length = pageRound(length)
	if length == 0 {
		return 0
	}
	p := uint8(prot & 7)
	if err := space.Protect(addr, length, p); err != nil {
		return -eNOMEM
	}
	for a := addr; a < addr+length; a += mem.PageSize {
		if p == 0 {
			// x86 has no present-but-inaccessible page: give the
			// frame back (its contents do not survive PROT_NONE).
			releaseRange(a, a+mem.PageSize)
			continue
		}
		if pageTable.SetFlags(a, pteFlags(p)) {
			invalidatePage(uintptr(a))
		}
	}
	return 0
}
