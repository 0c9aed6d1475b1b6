#include "textflag.h"

// Clock ids (include/uapi/linux/time.h).
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define SYS_clock_gettime 228

// vdsoClockGettime is __vdso_clock_gettime(clockid DI, ts SI) int AX, C ABI
// (AX, CX, DX, R8 and R11 are caller-saved there). The time is nanotime's:
// ((TSC - tscBase) * tscMult) >> 32, plus wallBase for the real-time
// clocks, split into seconds and nanoseconds.
TEXT ·vdsoClockGettime(SB),NOSPLIT|NOFRAME,$0
	CMPL	DI, $CLOCK_MONOTONIC
	JEQ	monotonic
	CMPL	DI, $CLOCK_REALTIME
	JEQ	realtime
	CMPL	DI, $CLOCK_MONOTONIC_RAW
	JEQ	monotonic
	CMPL	DI, $CLOCK_MONOTONIC_COARSE
	JEQ	monotonic
	CMPL	DI, $CLOCK_BOOTTIME
	JEQ	monotonic
	CMPL	DI, $CLOCK_REALTIME_COARSE
	JEQ	realtime
	MOVL	$SYS_clock_gettime, AX
	SYSCALL
	RET
realtime:
	MOVQ	·wallBase(SB), R8
	JMP	read
monotonic:
	XORL	R8, R8
read:
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	SUBQ	·tscBase(SB), AX
	MULQ	·tscMult(SB)		// DX:AX = ticks * ns per tick (32.32)
	SHRQ	$32, DX, AX		// AX = DX:AX >> 32
	ADDQ	R8, AX
	MOVQ	$1000000000, CX
	XORL	DX, DX
	DIVQ	CX
	MOVQ	AX, 0(SI)		// tv_sec
	MOVQ	DX, 8(SI)		// tv_nsec
	XORL	AX, AX
	RET

// func vdsoClockGettimeAddr() uintptr
TEXT ·vdsoClockGettimeAddr(SB),NOSPLIT,$0-8
	LEAQ	·vdsoClockGettime(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
