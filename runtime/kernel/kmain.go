package kernel

import (
	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// nxEnabled is set when the CPU has the no-execute bit (CPUID
// 0x80000001:EDX[20]) and EFER.NXE is on.
var nxEnabled bool

// kmain runs once, on the boot stack, with the kernel's fake g; it never
// returns. See the package documentation for the order of things.
func kmain() {
	initStacks()
	console.Init()
	if !readStartInfo(startInfoPhys) {
		console.Print("kernel: not started through PVH (bad start_info magic)\n")
		exitQEMU(3)
	}
	readACPI() // before initMemory may hand out the pages the tables are in
	if _, _, _, edx := cpu.CPUID(0x80000001, 0); edx&(1<<20) != 0 {
		nxEnabled = true
		cpu.WriteMSR(cpu.MSREFER, cpu.ReadMSR(cpu.MSREFER)|cpu.EFERNXE)
	}
	if xcr0 != 0 {
		_, ebx, _, _ := cpu.CPUID(0xd, 0)
		if ebx > xsaveSize {
			console.Print("kernel: XSAVE area larger than reserved\n")
			exitQEMU(3)
		}
		xsaveUsed = int(ebx)
	}
	if _, _, ecx, _ := cpu.CPUID(1, 0); ecx&(1<<30) != 0 {
		hasRDRAND = true
	} else {
		console.Print("kernel: no RDRAND: getrandom falls back to a TSC-seeded xorshift generator, which is not cryptographically secure\n")
	}
	initMemory()
	initDescriptors()
	calibrateTSC()
	initInterruptControllers()
	initThreads()
	initFiles()
	startFirstThread()
}

// startFirstThread builds the Linux initial process stack and enters the
// Go runtime's _rt0_amd64_linux as thread 1.
func startFirstThread() {
	i := newThread()
	t := &threads[i]
	if err := space.Insert(stackTop-stackLen, stackLen, 3); err != nil {
		panicKernel("stack region", stackTop)
	}
	sp := buildInitialStack(stackTop)
	t.frame = Frame{
		RIP: rt0Linux(), CS: selKernelCode, RFLAGS: cpu.FlagIF | 2,
		RSP: sp, SS: selKernelData,
	}
	xsaveInto(t.xsave)
	current = i
	t.state = threadRunning
	curFS = 0
	curXsave = t.xsave
	f := (*Frame)(virtPtr(uint64(trapStackTop - frameSize)))
	*f = t.frame
	accountedAt = nanotime()
	sliceEnd = accountedAt + timeslice
	timerDeadline = sliceEnd
	armTimer(timeslice)
	releaseZeroBSS()
	enterFrame(f)
}
