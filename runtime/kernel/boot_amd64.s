#include "textflag.h"
#include "go_asm.h"

// Sizes of the kernel stacks (see stacks.go).
#define FAULT_STACK 16384
#define BOOT_STACK 65536
#define TRAP_STACK 65536

// ADDR32 loads the absolute address of sym into reg from 32-bit code.
// The Go assembler encodes sym(SB) RIP-relative, which 32-bit mode reads
// as an absolute disp32 (target minus the next instruction's address), so
// we fetch our own address with CALL/POP and add it back. Needs a stack;
// clobbers DX. The LEAL ends 7 bytes after the POP.
#define ADDR32(sym, reg) BYTE $0xE8; LONG $0; BYTE $0x5A; LEAL sym, reg; ADDL DX, reg; ADDL $7, reg

// _rt0_pvh is the PVH entry point (the linker's -E entry; mkimage writes
// its address into the Xen PHYS32_ENTRY note). The CPU is in 32-bit
// protected mode with paging off, flat segments and interrupts off; EBX
// holds the physical address of struct hvm_start_info. Every instruction
// up to the far return below must mean the same in 32-bit mode as the Go
// assembler meant in 64-bit mode: no REX prefixes, no RIP-relative
// operands (see entry_test.go, which decodes these bytes in 32-bit mode).
TEXT _rt0_pvh(SB),NOSPLIT|NOFRAME,$0
	CLI
	MOVL	$0x7000, SP		// scratch stack in conventional memory for ADDR32
	MOVL	BX, SI			// keep start_info: the 64-bit code reads SI
	CLD

	// Enough RAM? Nothing past the image's text may be touched before
	// this: QEMU drops the parts of the image that lie beyond RAM, and
	// the page tables and stacks below live in the bss. AX = the top of
	// RAM: the highest end of a PVH memory map RAM entry (type 1) that
	// starts at or below the image's text, capped at 4 GiB. No start_info
	// or no memory map (version 0): skip the check; kmain deals with it.
	// The layouts are pvh.go's hvmStartInfo and memmapEntry.
	CMPL	hvmStartInfo_Magic(BX), $const_pvhMagic
	JNE	ramok
	CMPL	hvmStartInfo_Version(BX), $1	// the memory map came in version 1
	JCS	ramok
	CMPL	(hvmStartInfo_MemmapPaddr+4)(BX), $0	// memory map above 4 GiB
	JNE	ramok
	MOVL	hvmStartInfo_MemmapPaddr(BX), DI
	MOVL	hvmStartInfo_MemmapEntries(BX), CX
	TESTL	DI, DI
	JEQ	ramok
	TESTL	CX, CX
	JEQ	ramok
	ADDR32(runtime·text(SB), BP)
	XORL	AX, AX
memloop:
	CMPL	memmapEntry_Type(DI), $const_e820RAM
	JNE	memnext
	CMPL	(memmapEntry_Addr+4)(DI), $0	// starts above 4 GiB
	JNE	memnext
	MOVL	memmapEntry_Addr(DI), DX
	CMPL	DX, BP			// starts above the text
	JHI	memnext
	ADDL	memmapEntry_Size(DI), DX	// end = addr + size, saturated
	JCS	memsat
	CMPL	(memmapEntry_Size+4)(DI), $0
	JEQ	memend
memsat:
	MOVL	$0xffffffff, DX
memend:
	CMPL	DX, AX
	JLS	memnext
	MOVL	DX, AX
memnext:
	ADDL	$memmapEntry__size, DI
	DECL	CX
	JNE	memloop

	// The kernel needs RAM up to the end of the part of the frame bitmap
	// that covers AX (bitmapStore, 8 bytes per 256 KiB, as initMemory
	// sizes it): bitmapStore is the last of the kernel's variables, which
	// must all be resident from here to releaseZeroBSS, and it lies past
	// the image's file-backed data (TestKernelDataBelowFrameBitmap checks
	// both). The rest of the bss is backed on demand.
	MOVL	AX, BX
	SHRL	$12, BX
	ADDL	$63, BX
	SHRL	$6, BX
	SHLL	$3, BX
	ADDR32(·bitmapStore(SB), DI)
	ADDL	DI, BX
	CMPL	AX, BX
	JCC	ramok

	// Too little: say how much is needed (rounded up to MiB) and what
	// there is (in hundredths of a MiB: QEMU's firmware keeps the top
	// 132 KiB of -m for itself), and exit through isa-debug-exit with the
	// kernel's failure status.
	ADDL	$0xfffff, BX
	SHRL	$20, BX
	PUSHQ	AX
	PUSHQ	BX
	ADDR32(·lowRAMNeeds(SB), SI)
	CALL	·puts32(SB)
	POPQ	AX
	CALL	·putDec32(SB)
	ADDR32(·lowRAMHas(SB), SI)
	CALL	·puts32(SB)
	POPQ	AX
	CALL	·putMiB32(SB)
	ADDR32(·lowRAMEnd(SB), SI)
	CALL	·puts32(SB)
	MOVL	$const_statusKernelFailure, AX
	MOVL	$const_debugExitPort, DX
	OUTB
ramhalt:
	HLT
	JMP	ramhalt

ramok:

	// Identity-map the first 4 GiB with 2 MiB pages: PML4, PDPT and four
	// page directories, 4096-aligned inside bootPageTables.
	ADDR32(·bootPageTables(SB), BP)
	ADDL	$4095, BP
	ANDL	$0xfffff000, BP
	MOVL	BP, DI
	XORL	AX, AX
	MOVL	$(6*1024), CX
	REP; STOSL
	LEAL	4099(BP), AX		// PML4[0] = PDPT | present | write
	MOVL	AX, (BP)
	LEAL	8195(BP), AX		// PDPT[i] = PD_i | present | write
	MOVL	AX, 4096(BP)
	ADDL	$4096, AX
	MOVL	AX, 4104(BP)
	ADDL	$4096, AX
	MOVL	AX, 4112(BP)
	ADDL	$4096, AX
	MOVL	AX, 4120(BP)
	LEAL	8192(BP), DI
	MOVL	$0x83, AX		// present | write | 2 MiB page
	MOVL	$2048, CX
pdloop:
	MOVL	AX, (DI)
	ADDL	$0x200000, AX
	ADDL	$8, DI
	DECL	CX
	JNE	pdloop

	MOVQ	CR4, AX			// CR4.PAE
	ORL	$0x20, AX
	MOVQ	AX, CR4
	MOVQ	BP, CR3
	MOVL	$0xc0000080, CX		// EFER.LME
	RDMSR
	ORL	$0x100, AX
	WRMSR
	MOVQ	CR0, AX			// CR0.PG | CR0.WP | CR0.PE
	ORL	$0x80010001, AX
	MOVQ	AX, CR0

	// Load the GDT: gdtr.base = &gdt, then LGDT (EAX).
	ADDR32(·gdt(SB), BX)
	ADDR32(·gdtr(SB), AX)
	MOVL	BX, 2(AX)
	BYTE	$0x0F; BYTE $0x01; BYTE $0x10	// LGDT (EAX)

	// Far return into 64-bit code: push CS then EIP.
	ADDR32(·entry64(SB), AX)
	PUSHQ	$0x08
	PUSHQ	AX
	BYTE	$0xCB			// RETF
	POPQ	AX			// never reached; balances the pushes for the assembler
	POPQ	AX
	RET

// puts32, putDec32, putMiB32 and putc32 write to COM1 from _rt0_pvh's 32-bit code
// (no console.Init yet: QEMU's UART takes bytes as it comes out of reset).
// They follow the same rules as _rt0_pvh and are decoded with it.

// puts32 writes the NUL-terminated string at SI. Clobbers AX, DX, SI.
TEXT ·puts32(SB),NOSPLIT|NOFRAME,$0
next:
	MOVBLZX	(SI), AX
	TESTL	AX, AX
	JEQ	done
	CALL	·putc32(SB)
	INCL	SI
	JMP	next
done:
	RET

// putDec32 writes AX in decimal. Clobbers AX, BX, CX, DX.
TEXT ·putDec32(SB),NOSPLIT|NOFRAME,$0
	MOVL	$10, CX
	XORL	BX, BX
digits:
	XORL	DX, DX
	DIVL	CX
	PUSHQ	DX
	INCL	BX
	TESTL	AX, AX
	JNE	digits
write:
	POPQ	AX
	ADDL	$0x30, AX		// '0'
	CALL	·putc32(SB)
	DECL	BX
	JNE	write
	RET

// putMiB32 writes AX bytes as MiB, with two decimals (rounded down)
// unless it is a whole number. Clobbers AX, BX, CX, DX.
TEXT ·putMiB32(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	AX
	SHRL	$20, AX
	CALL	·putDec32(SB)
	POPQ	AX
	ANDL	$0xfffff, AX
	JEQ	whole
	IMUL3L	$100, AX, AX
	SHRL	$20, AX
	PUSHQ	AX
	MOVL	$0x2e, AX		// '.'
	CALL	·putc32(SB)
	POPQ	AX
	CMPL	AX, $10
	JCC	twodigits
	PUSHQ	AX
	MOVL	$0x30, AX		// leading '0'
	CALL	·putc32(SB)
	POPQ	AX
twodigits:
	CALL	·putDec32(SB)
whole:
	RET

// putc32 writes AL once the transmitter has room (LSR.THRE), or after
// 2^20 polls as console.PutByte does. Clobbers DX.
TEXT ·putc32(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	CX
	PUSHQ	AX
	MOVL	$0x100000, CX
	MOVL	$const_com1LineStatus, DX
wait:
	INB
	TESTB	$const_com1THRE, AL
	JNE	ready
	DECL	CX
	JNE	wait
ready:
	POPQ	AX
	POPQ	CX
	MOVL	$const_com1Data, DX
	OUTB
	RET

// The low-memory message, in text because the image's data may lie
// beyond RAM: "kernel: this image needs at least N MiB of RAM; the
// machine has M MiB".
TEXT ·lowRAMNeeds(SB),NOSPLIT|NOFRAME,$0
	BYTE $'k'; BYTE $'e'; BYTE $'r'; BYTE $'n'; BYTE $'e'; BYTE $'l'; BYTE $':'; BYTE $' '
	BYTE $'t'; BYTE $'h'; BYTE $'i'; BYTE $'s'; BYTE $' '; BYTE $'i'; BYTE $'m'; BYTE $'a'
	BYTE $'g'; BYTE $'e'; BYTE $' '; BYTE $'n'; BYTE $'e'; BYTE $'e'; BYTE $'d'; BYTE $'s'
	BYTE $' '; BYTE $'a'; BYTE $'t'; BYTE $' '; BYTE $'l'; BYTE $'e'; BYTE $'a'; BYTE $'s'
	BYTE $'t'; BYTE $' '; BYTE $0

TEXT ·lowRAMHas(SB),NOSPLIT|NOFRAME,$0
	BYTE $' '; BYTE $'M'; BYTE $'i'; BYTE $'B'; BYTE $' '; BYTE $'o'; BYTE $'f'; BYTE $' '
	BYTE $'R'; BYTE $'A'; BYTE $'M'; BYTE $';'; BYTE $' '; BYTE $'t'; BYTE $'h'; BYTE $'e'
	BYTE $' '; BYTE $'m'; BYTE $'a'; BYTE $'c'; BYTE $'h'; BYTE $'i'; BYTE $'n'; BYTE $'e'
	BYTE $' '; BYTE $'h'; BYTE $'a'; BYTE $'s'; BYTE $' '; BYTE $0

TEXT ·lowRAMEnd(SB),NOSPLIT|NOFRAME,$0
	BYTE $' '; BYTE $'M'; BYTE $'i'; BYTE $'B'; BYTE $'\r'; BYTE $'\n'; BYTE $0

// entry64 runs in 64-bit mode on the identity map: segments, FPU/SSE and
// XSAVE state, the boot stack and the kernel's TLS, then kmain in Go.
TEXT ·entry64(SB),NOSPLIT|NOFRAME,$0
	MOVL	$0x10, AX
	BYTE	$0x8E; BYTE $0xD8	// MOVW AX, DS
	BYTE	$0x8E; BYTE $0xC0	// MOVW AX, ES
	BYTE	$0x8E; BYTE $0xD0	// MOVW AX, SS
	BYTE	$0x8E; BYTE $0xE0	// MOVW AX, FS
	BYTE	$0x8E; BYTE $0xE8	// MOVW AX, GS
	MOVQ	SI, ·startInfoPhys(SB)

	// Boot stack: the middle part of kernelStacks.
	LEAQ	·kernelStacks(SB), SP
	ADDQ	$(FAULT_STACK+BOOT_STACK), SP

	// FPU and SSE: CR0.MP on, CR0.EM and CR0.TS off; CR4.OSFXSR and
	// CR4.OSXMMEXCPT on. Go code uses SSE everywhere.
	MOVQ	CR0, AX
	ANDQ	$~0xc, AX
	ORQ	$0x22, AX		// MP | NE
	MOVQ	AX, CR0
	MOVQ	CR4, AX
	ORQ	$0x600, AX
	MOVQ	AX, CR4
	BYTE	$0xDB; BYTE $0xE3	// FNINIT

	// XSAVE with x87|SSE, and AVX when the CPU has it (CPUID.1:ECX bits 26
	// and 28); XCR0 enables the state components.
	MOVL	$1, AX
	XORL	CX, CX
	CPUID
	BTL	$26, CX
	JCC	noxsave
	MOVL	CX, BX
	MOVQ	CR4, AX
	ORQ	$0x40000, AX		// CR4.OSXSAVE
	MOVQ	AX, CR4
	MOVL	$3, AX
	BTL	$28, BX
	JCC	xcr
	ORL	$4, AX
xcr:
	MOVL	AX, ·xcr0(SB)
	XORL	DX, DX
	XORL	CX, CX
	XSETBV
noxsave:
	// Kernel Go code finds its g at -8(FS): point FS at kernelTLS+8,
	// whose first word holds &kernelG (set up by kernelTLS's DATA).
	LEAQ	·kernelG(SB), AX
	MOVQ	AX, ·kernelTLS(SB)
	LEAQ	·kernelTLS(SB), AX
	ADDQ	$8, AX
	MOVQ	AX, ·kernelFS(SB)
	MOVQ	AX, DX
	SHRQ	$32, DX
	MOVL	$0xc0000100, CX
	WRMSR
	CALL	·kmain(SB)
	// kmain never returns.
	HLT
	JMP	-1(PC)

// syscallEntry is the SYSCALL target (MSR_LSTAR). The caller runs in ring
// 0 too, so SYSCALL switched nothing but RIP (saved in RCX), RFLAGS (R11)
// and IF (cleared through MSR_FMASK): switch to the trap stack at once
// (goroutine stacks have little headroom) and build the same frame an
// interrupt would, with vector 256.
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SP, ·syscallSP(SB)
	MOVQ	·trapStackTop(SB), SP
	PUSHQ	$0x10			// SS
	PUSHQ	·syscallSP(SB)		// RSP
	PUSHQ	R11			// RFLAGS
	PUSHQ	$0x08			// CS
	PUSHQ	CX			// RIP
	PUSHQ	$0			// error code
	PUSHQ	$256			// vector
	JMP	·trapCommon(SB)

// trapCommon saves the interrupted context as a Frame (frame.go) on the
// current stack, saves its extended state, switches FS to the kernel's
// TLS and calls trap. trap may replace the frame and the current thread (a
// context switch); the exit path then restores whatever the frame and
// curXsave/curFS say.
//
// An entry from the program (trapDepth 0) always ends up on the trap
// stack: exceptions arrive on the fault stack (IST 2), and their 7 words
// (vector, error code, and the CPU's 5) are moved to the trap stack first,
// so that a fault taken inside the kernel (trapDepth 1, e.g. the first
// touch of a bss page released at boot) finds the fault stack free. Such a
// nested entry keeps the kernel's FS and saves the kernel's extended state
// in nestedXsave instead of the thread's area.
TEXT ·trapCommon(SB),NOSPLIT|NOFRAME,$0
	CMPQ	·trapDepth(SB), $0
	JNE	pushregs
	MOVQ	AX, ·scratchAX(SB)
	MOVQ	·trapStackTop(SB), AX
	SUBQ	$56, AX
	CMPQ	SP, AX
	JEQ	moved
	MOVQ	BX, ·scratchBX(SB)
	MOVQ	0(SP), BX
	MOVQ	BX, 0(AX)
	MOVQ	8(SP), BX
	MOVQ	BX, 8(AX)
	MOVQ	16(SP), BX
	MOVQ	BX, 16(AX)
	MOVQ	24(SP), BX
	MOVQ	BX, 24(AX)
	MOVQ	32(SP), BX
	MOVQ	BX, 32(AX)
	MOVQ	40(SP), BX
	MOVQ	BX, 40(AX)
	MOVQ	48(SP), BX
	MOVQ	BX, 48(AX)
	MOVQ	·scratchBX(SB), BX
	MOVQ	AX, SP
moved:
	MOVQ	·scratchAX(SB), AX
pushregs:
	PUSHQ	AX
	PUSHQ	BX
	PUSHQ	CX
	PUSHQ	DX
	PUSHQ	SI
	PUSHQ	DI
	PUSHQ	BP
	PUSHQ	R8
	PUSHQ	R9
	PUSHQ	R10
	PUSHQ	R11
	PUSHQ	R12
	PUSHQ	R13
	PUSHQ	R14
	PUSHQ	R15
	INCQ	·trapDepth(SB)
	CMPQ	·trapDepth(SB), $1
	JNE	nestedsave
	MOVQ	·curXsave(SB), DI
	CALL	·saveExtended(SB)
	MOVQ	·kernelFS(SB), AX
	MOVQ	AX, DX
	SHRQ	$32, DX
	MOVL	$0xc0000100, CX
	WRMSR
	JMP	call
nestedsave:
	MOVQ	·nestedXsave(SB), DI
	CALL	·saveExtended(SB)
call:
	MOVQ	SP, BX
	SUBQ	$16, SP
	MOVQ	BX, 0(SP)
	CALL	·trap(SB)
	ADDQ	$16, SP
	JMP	·trapExit(SB)

// saveExtended saves the extended state into the area at DI (XSAVE64 with
// every component enabled in XCR0, or FXSAVE64 without XSAVE).
TEXT ·saveExtended(SB),NOSPLIT|NOFRAME,$0
	MOVL	$0xffffffff, AX
	MOVL	$0xffffffff, DX
	CMPL	·xcr0(SB), $0
	JEQ	fx
	BYTE	$0x48; BYTE $0x0F; BYTE $0xAE; BYTE $0x27	// XSAVE64 (DI)
	RET
fx:
	BYTE	$0x48; BYTE $0x0F; BYTE $0xAE; BYTE $0x07	// FXSAVE64 (DI)
	RET

// restoreExtended is saveExtended's inverse (XRSTOR64 or FXRSTOR64).
TEXT ·restoreExtended(SB),NOSPLIT|NOFRAME,$0
	MOVL	$0xffffffff, AX
	MOVL	$0xffffffff, DX
	CMPL	·xcr0(SB), $0
	JEQ	fx
	BYTE	$0x48; BYTE $0x0F; BYTE $0xAE; BYTE $0x2F	// XRSTOR64 (DI)
	RET
fx:
	BYTE	$0x48; BYTE $0x0F; BYTE $0xAE; BYTE $0x0F	// FXRSTOR64 (DI)
	RET

// trapExit restores the context in the frame at SP and, leaving for the
// program, the current thread's FS base and extended state, then returns
// with IRETQ (SYSRET would drop to ring 3).
TEXT ·trapExit(SB),NOSPLIT|NOFRAME,$0
	CMPQ	·trapDepth(SB), $1
	JNE	nestedrestore
	MOVQ	·curFS(SB), AX
	MOVQ	AX, DX
	SHRQ	$32, DX
	MOVL	$0xc0000100, CX
	WRMSR
	MOVQ	·curXsave(SB), DI
	CALL	·restoreExtended(SB)
	JMP	restored
nestedrestore:
	MOVQ	·nestedXsave(SB), DI
	CALL	·restoreExtended(SB)
restored:
	DECQ	·trapDepth(SB)
	POPQ	R15
	POPQ	R14
	POPQ	R13
	POPQ	R12
	POPQ	R11
	POPQ	R10
	POPQ	R9
	POPQ	R8
	POPQ	BP
	POPQ	DI
	POPQ	SI
	POPQ	DX
	POPQ	CX
	POPQ	BX
	POPQ	AX
	ADDQ	$16, SP			// vector and error code
	IRETQ

// enterFrame leaves kmain for good: it runs the context in the frame at f
// (the first thread) through the common exit path.
TEXT ·enterFrame(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ	f+0(FP), SP
	INCQ	·trapDepth(SB)
	JMP	·trapExit(SB)

// idleLoop is where the idle thread runs: halt with interrupts on until
// the next one. Its context is saved and restored like any thread's.
TEXT ·idleLoop(SB),NOSPLIT|NOFRAME,$0
again:
	STI
	HLT
	JMP	again

// loadGDT loads the GDT register from the 10-byte pseudo-descriptor at p
// and reloads CS (far return) and the data segments.
TEXT ·loadGDT(SB),NOSPLIT,$0-8
	MOVQ	p+0(FP), AX
	BYTE	$0x0F; BYTE $0x01; BYTE $0x10	// LGDT (AX)
	RET

// loadIDT loads the IDT register from the pseudo-descriptor at p.
TEXT ·loadIDT(SB),NOSPLIT,$0-8
	MOVQ	p+0(FP), AX
	BYTE	$0x0F; BYTE $0x01; BYTE $0x18	// LIDT (AX)
	RET

// loadTR loads the task register with selector sel.
TEXT ·loadTR(SB),NOSPLIT,$0-2
	MOVW	sel+0(FP), AX
	BYTE	$0x0F; BYTE $0x00; BYTE $0xD8	// LTR AX
	RET

// xsaveInto saves the current extended state into the area at p (used to
// seed the first thread's area).
TEXT ·xsaveInto(SB),NOSPLIT,$0-8
	MOVQ	p+0(FP), DI
	CALL	·saveExtended(SB)
	RET

// rt0Linux returns the address of the Go runtime's own Linux entry point.
TEXT ·rt0Linux(SB),NOSPLIT,$0-8
	LEAQ	_rt0_amd64_linux(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// funcAddr returns the address of syscallEntry, idleLoop and the vector
// stubs (see vectors_amd64.s) for the IDT and MSRs.
TEXT ·syscallEntryAddr(SB),NOSPLIT,$0-8
	LEAQ	·syscallEntry(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

TEXT ·idleLoopAddr(SB),NOSPLIT,$0-8
	LEAQ	·idleLoop(SB), AX
	MOVQ	AX, ret+0(FP)
	RET


TEXT ·imageEnd(SB),NOSPLIT,$0-8
	LEAQ	runtime·end(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

TEXT ·imageStart(SB),NOSPLIT,$0-8
	LEAQ	runtime·text(SB), AX
	ANDQ	$~0xfff, AX
	SUBQ	$0x1000, AX		// the ELF header page precedes .text
	MOVQ	AX, ret+0(FP)
	RET

// crashTrampoline is what a crashing thread runs (crash.go): the kernel
// pushed the faulting RIP as a return address. It calls reportCrash,
// which never returns.
TEXT ·crashTrampoline(SB),NOSPLIT|NOFRAME,$0
	CALL	·reportCrash(SB)
	HLT

TEXT ·crashTrampolineAddr(SB),NOSPLIT,$0-8
	LEAQ	·crashTrampoline(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

TEXT ·bssStart(SB),NOSPLIT,$0-8
	LEAQ	runtime·bss(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
