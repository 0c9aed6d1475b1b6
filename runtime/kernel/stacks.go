package kernel

import "unsafe"

// The kernel's stacks, in one array so that the fake g's bounds cover all
// of them: the fault stack (IST 2: exceptions), the boot stack (kmain; the
// idle thread's stack afterwards) and the trap stack (IST 1 and SYSCALL).
const (
	faultStackSize = 16 << 10
	bootStackSize  = 64 << 10
	trapStackSize  = 64 << 10
	stackGuard     = 2048
)

// bootPageTables holds _rt0_pvh's identity map of the first 4 GiB (PML4,
// PDPT, four page directories, aligned up to 4096 inside).
var bootPageTables [7 * 4096]byte

var kernelStacks [faultStackSize + bootStackSize + trapStackSize + 64]byte

// fakeG mirrors the head of the Go runtime's g (runtime/runtime2.go):
// stack bounds and the two stack guards at fixed offsets that compiled
// prologues read through -8(FS). Everything after them stays zero: kernel
// code must not need an m, a p or the allocator.
type fakeG struct {
	stackLo, stackHi         uintptr
	stackguard0, stackguard1 uintptr
	_                        [64]uintptr
}

var (
	kernelG   fakeG
	kernelTLS [4]uintptr // kernelTLS[0] is -8(FS): &kernelG
	kernelFS  uintptr    // FS base while in the kernel (&kernelTLS[1])
	// trapStackTop is where SYSCALL and interrupt frames start (IST 1).
	trapStackTop uintptr
	syscallSP    uintptr // scratch for syscallEntry
	trapDepth    uint64  // nested trap entries (>1: a fault in the kernel)
	// scratchAX and scratchBX hold registers while trapCommon moves an
	// exception frame off the fault stack.
	scratchAX, scratchBX uint64
	// nestedXsave is the XSAVE area for the kernel's own extended state
	// while it takes a fault (trapDepth 2).
	nestedXsave   uintptr
	startInfoPhys uint64 // EBX at the PVH entry
	xcr0          uint32 // XSAVE components enabled; 0 = no XSAVE (FXSAVE)
)

func stacksBase() uintptr    { return (uintptr(unsafe.Pointer(&kernelStacks[0])) + 63) &^ 63 }
func faultStackTop() uintptr { return stacksBase() + faultStackSize }
func bootStackTop() uint64   { return uint64(stacksBase() + faultStackSize + bootStackSize) }

// initStacks sets the fake g's bounds and the trap stack top.
func initStacks() {
	lo := stacksBase()
	kernelG.stackLo = lo
	kernelG.stackHi = lo + faultStackSize + bootStackSize + trapStackSize
	kernelG.stackguard0 = lo + stackGuard
	kernelG.stackguard1 = lo + stackGuard
	trapStackTop = kernelG.stackHi
}
