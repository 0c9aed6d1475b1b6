package kernel

import "unsafe"

// Frame is the saved context of an interrupted thread, in the order
// trapCommon pushes it (lowest address first); the last five words are
// what the CPU pushes for an interrupt (and what syscallEntry builds).
type Frame struct {
	R15, R14, R13, R12, R11, R10, R9, R8 uint64
	RBP, RDI, RSI, RDX, RCX, RBX, RAX    uint64
	Vector                               uint64 // 0-255, or vectorSyscall
	ErrorCode                            uint64
	RIP, CS, RFLAGS, RSP, SS             uint64
}

const frameSize = unsafe.Sizeof(Frame{})

// vectorSyscall marks a frame built by syscallEntry.
const vectorSyscall = 256

// Segment selectors in gdt (gdt.go).
const (
	selKernelCode = 0x08
	selKernelData = 0x10
	selTSS        = 0x18
)
