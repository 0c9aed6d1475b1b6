package kernel

import (
	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
	"github.com/govirtio/govirtio/runtime/mem"
)

// Address-space layout. Physical memory is identity-mapped (the kernel
// reaches page tables and frames through it, and DMA addresses are
// virtual addresses); the program's mmap regions live above it.
const (
	userLow  = 0x0000_0080_0000_0000 // 512 GiB: above any RAM we map
	userHigh = 0x0000_7fff_ffff_f000 // top of the lower canonical half
	lowMem   = 1 << 20               // below this: BIOS, option ROMs, boot data
	maxPhys  = 64 << 30              // RAM the frame bitmap can cover
	stackTop = userHigh              // the first thread's stack grows down from here
	stackLen = 8 << 20
)

var (
	frames    mem.Frames
	pageTable mem.PageTable
	space     mem.Space
	// bitmapStore backs the frame bitmap: one bit per 4 KiB of maxPhys.
	bitmapStore [maxPhys / mem.PageSize / 64]uint64
	// ramTop is the end of the highest RAM range.
	ramTop uint64
	// memStats counts demand paging, for the console report.
	memStats struct {
		faults, zeroed, released uint64
	}
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
	frames.Init(bitmapStore[:])
	if boot.nmem == 0 {
		console.Print("kernel: no PVH memory map; assuming 64 MiB\n")
		boot.memmap[0] = memmapEntry{Addr: 0, Size: 64 << 20, Type: e820RAM}
		boot.nmem = 1
	}
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
		start, end := e.Addr, e.Addr+e.Size
		if start < mem.PageSize {
			start = mem.PageSize // page 0 stays unmapped
		}
		start &^= mem.PageSize - 1
		end = (end + mem.PageSize - 1) &^ (mem.PageSize - 1)
		if end <= start {
			continue
		}
		if err := pageTable.MapRange(start, start, end-start, mem.PTEWrite|mem.PTEGlobal); err != nil {
			panicKernel("identity map", start)
		}
	}
	// The image itself (in case the memory map left it out).
	is, ie := imageStart(), (imageEnd()+mem.PageSize-1)&^(mem.PageSize-1)
	for a := is; a < ie; a += mem.PageSize {
		if _, _, ok := pageTable.Lookup(a); !ok {
			pageTable.Map(a, a, mem.PTEWrite|mem.PTEGlobal)
		}
	}
	cpu.WriteCR3(pageTable.Root)
	space.Init(userLow, userHigh)
}

// mapDevice maps [phys, phys+size) uncached at the same virtual address,
// for device registers (LAPIC, IOAPIC, PCI BARs).
func mapDevice(phys, size uint64) error {
	start := phys &^ (mem.PageSize - 1)
	end := (phys + size + mem.PageSize - 1) &^ (mem.PageSize - 1)
	for a := start; a < end; a += mem.PageSize {
		if err := pageTable.Map(a, a, mem.PTEWrite|mem.PTENoCache|mem.PTEWriteThr|mem.PTENoExec); err != nil {
			return err
		}
		invalidatePage(uintptr(a))
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
	memStats.zeroed++
	return p, true
}

// pteFlags turns region protection into leaf flags.
func pteFlags(prot uint8) uint64 {
	f := uint64(0)
	if prot&mem.ProtWrite != 0 {
		f |= mem.PTEWrite
	}
	if prot&mem.ProtExec == 0 && nxEnabled {
		f |= mem.PTENoExec
	}
	return f
}

// faultIn backs the page holding va if a region allows the access. It
// reports false for an address the program may not touch (a SIGSEGV).
func faultIn(va uint64, write bool) (ok bool, accessErr bool) {
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
	memStats.faults++
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
		memStats.released++
	}
}

// invalidatePage drops a stale TLB entry after a page-table change
// (host-side tests replace it: INVLPG is privileged).
var invalidatePage = cpu.Invlpg
