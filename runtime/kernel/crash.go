package kernel

import (
	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// Crash handling. The kernel cannot format a disassembly itself (it must
// not allocate), so a fatal fault goes in two steps:
//
//  1. crash (kernel side) prints the registers and the code bytes at once,
//     keeps a crashRecord, and makes the faulting thread call
//     crashTrampoline, the way Go's own signal handler injects sigpanic;
//  2. reportCrash (crashreport.go, ordinary Go on that thread) fetches the
//     record with the sysCrashReport call, disassembles the faulting
//     instruction with x86asm, prints it and exits with status 3.
//
// If step 2 cannot run (the fault hit the idle thread, a fault while
// reporting, or no exit within crashTimeout), the kernel exits on its own.
// A fault inside the kernel itself only gets step 1.

// crashRecord is the fault being reported; it has the byte layout that
// reportCrash decodes (see crashRecordCopy).
type crashRecord struct {
	frame Frame
	cr2   uint64
	ncode uint64
	code  [16]byte
	why   [48]byte
}

const crashTimeout = 3_000_000_000

var (
	crashRec   crashRecord
	crashing   bool  // a crash is being reported
	crashSince int64 // nanotime of the crash
)

func crashTrampolineAddr() uint64

// crash reports a fatal fault in the program (the thread of f).
func crash(f *Frame, why string, cr2 uint64) {
	record(f, why, cr2)
	if crashing || current == 0 {
		exitQEMU(3)
	}
	crashing = true
	crashSince = nanotime()
	inject(f)
}

// kernelFault handles an exception raised while the kernel was running
// (trapDepth > 1) that it cannot take: the kernel's state is suspect, so
// it prints what it can and stops the machine. (Injecting the report into
// the program, as crash does, would run Go code at an arbitrary point of
// the interrupted kernel path.)
func kernelFault(f *Frame) {
	record(f, "fault inside the kernel", readCR2IfPF(f))
	exitQEMU(3)
}

// inject makes the thread run crashTrampoline next, as if the faulting
// instruction had called it.
func inject(f *Frame) {
	sp := f.RSP - 8
	if !userRange(sp, 8, true) {
		exitQEMU(3)
	}
	le.PutUint64(userBytes(sp, 8), f.RIP)
	f.RSP = sp
	f.RIP = crashTrampolineAddr()
}

func readCR2IfPF(f *Frame) uint64 {
	if f.Vector == excPage {
		return cpu.ReadCR2()
	}
	return 0
}

// record keeps the crash and prints what the kernel can print without
// allocating: vector, error code, CR2, registers, code bytes.
func record(f *Frame, why string, cr2 uint64) {
	crashRec = crashRecord{frame: *f, cr2: cr2}
	copy(crashRec.why[:], why)
	// The code bytes, if the page is mapped (never fault here).
	for i := range crashRec.code {
		a := f.RIP + uint64(i)
		if _, _, ok := pageTable.Lookup(a); !ok {
			break
		}
		crashRec.code[i] = *(*byte)(virtPtr(a))
		crashRec.ncode++
	}
	console.Print("\nkernel: ")
	console.Print(why)
	console.Print("\n  vector ")
	console.PrintDec(f.Vector)
	console.Print("  error ")
	console.PrintHex(f.ErrorCode)
	console.Print("  cr2 ")
	console.PrintHex(cr2)
	console.Print("\n")
	regs := [...]struct {
		name string
		v    uint64
	}{
		{"rip", f.RIP}, {"rsp", f.RSP}, {"rflags", f.RFLAGS}, {"rax", f.RAX},
		{"rbx", f.RBX}, {"rcx", f.RCX}, {"rdx", f.RDX}, {"rsi", f.RSI},
		{"rdi", f.RDI}, {"rbp", f.RBP}, {"r8", f.R8}, {"r9", f.R9},
		{"r10", f.R10}, {"r11", f.R11}, {"r12", f.R12}, {"r13", f.R13},
		{"r14", f.R14}, {"r15", f.R15},
	}
	for i, r := range regs {
		console.Print("  ")
		console.Print(r.name)
		for n := len(r.name); n < 7; n++ {
			console.PutByte(' ')
		}
		console.PrintHex(r.v)
		if i%3 == 2 {
			console.Print("\n")
		}
	}
	console.Print("  code  ")
	const digits = "0123456789abcdef"
	for i := uint64(0); i < crashRec.ncode; i++ {
		b := crashRec.code[i]
		console.PutByte(digits[b>>4])
		console.PutByte(digits[b&15])
		console.PutByte(' ')
	}
	console.Print("\n")
}

// crashRecordCopy hands the record to reportCrash: n bytes at buf.
func crashRecordCopy(buf, n uint64) int64 {
	if !crashing {
		return -eAGAIN
	}
	if n < crashRecordSize || !userRange(buf, crashRecordSize, true) {
		return -eINVAL
	}
	b := userBytes(buf, crashRecordSize)
	f := &crashRec.frame
	for i, v := range [...]uint64{
		f.Vector, f.ErrorCode, crashRec.cr2, f.RIP, f.RSP, f.RFLAGS,
		f.RAX, f.RBX, f.RCX, f.RDX, f.RSI, f.RDI, f.RBP,
		f.R8, f.R9, f.R10, f.R11, f.R12, f.R13, f.R14, f.R15, crashRec.ncode,
	} {
		le.PutUint64(b[i*8:], v)
	}
	copy(b[22*8:], crashRec.code[:])
	copy(b[22*8+16:], crashRec.why[:])
	return crashRecordSize
}

// crashRecordSize is the byte size of the record reportCrash reads.
const crashRecordSize = 22*8 + 16 + 48

// checkCrashTimeout stops the machine when the report never finished.
func checkCrashTimeout(now int64) {
	if crashing && now-crashSince > crashTimeout {
		console.Print("kernel: crash report did not finish; exiting\n")
		exitQEMU(3)
	}
}
