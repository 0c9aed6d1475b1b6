package kernel

import (
	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// Local APIC registers (Intel SDM Vol. 3 §11.4, xAPIC MMIO offsets).
const (
	lapicID       = 0x020
	lapicEOI      = 0x0b0
	lapicSVR      = 0x0f0
	lapicLVTTimer = 0x320
	lapicLVTLint0 = 0x350
	lapicLVTLint1 = 0x360
	lapicLVTError = 0x370
	lapicInitCnt  = 0x380
	lapicCurCnt   = 0x390
	lapicDivide   = 0x3e0

	lapicEnable  = 0x100   // SVR: APIC software enable
	lvtMasked    = 1 << 16 // LVT mask bit
	divideBy1    = 0xb
	apicBaseMask = 0xffffff000
)

// Interrupt vectors.
const (
	vectorTimer    = 0x20
	vectorSpurious = 0xff
	picBase        = 0xe0 // the legacy PICs, remapped and masked
)

var (
	lapicBase  uint64 // physical (= virtual) address of the LAPIC page
	lapicHz    uint64 // LAPIC timer ticks per second (divide by 1)
	timerArmed bool   // a one-shot is counting
)

func lapicRead(reg uint64) uint32 {
	return *(*uint32)(physPtr(lapicBase + reg))
}

func lapicWrite(reg uint64, v uint32) {
	*(*uint32)(physPtr(lapicBase + reg)) = v
}

// initInterruptControllers masks the legacy PICs, enables the LAPIC and
// calibrates its timer against the TSC.
func initInterruptControllers() {
	// ICW1-4: remap the PICs to picBase and mask every line.
	for _, w := range [...][2]uint16{
		{0x20, 0x11}, {0xa0, 0x11}, {0x21, picBase}, {0xa1, picBase + 8},
		{0x21, 4}, {0xa1, 2}, {0x21, 1}, {0xa1, 1}, {0x21, 0xff}, {0xa1, 0xff},
	} {
		cpu.Out8(w[0], uint8(w[1]))
	}
	lapicBase = cpu.ReadMSR(cpu.MSRAPICBase) & apicBaseMask
	if err := mapDevice(lapicBase, 4096); err != nil {
		panicKernel("map LAPIC", lapicBase)
	}
	lapicWrite(lapicSVR, lapicEnable|vectorSpurious)
	lapicWrite(lapicLVTLint0, lvtMasked)
	lapicWrite(lapicLVTLint1, lvtMasked)
	lapicWrite(lapicLVTError, lvtMasked)
	lapicWrite(lapicDivide, divideBy1)

	// Count down from the maximum for 10 ms of TSC.
	lapicWrite(lapicLVTTimer, lvtMasked|vectorTimer)
	lapicWrite(lapicInitCnt, 0xffffffff)
	t0 := cpu.RDTSC()
	for cpu.RDTSC()-t0 < tscHz/100 {
	}
	elapsed := 0xffffffff - lapicRead(lapicCurCnt)
	lapicWrite(lapicInitCnt, 0)
	lapicHz = uint64(elapsed) * 100
	if lapicHz == 0 {
		console.Print("kernel: LAPIC timer does not count\n")
		lapicHz = 1e9
	}
	lapicWrite(lapicLVTTimer, vectorTimer) // one-shot, unmasked
}

// armTimer makes the LAPIC interrupt after ns nanoseconds (one-shot).
func armTimer(ns int64) {
	if ns < 10_000 {
		ns = 10_000
	}
	ticks := uint64(ns) * (lapicHz / 1000) / 1_000_000
	if ticks == 0 {
		ticks = 1
	}
	if ticks > 0xffffffff {
		ticks = 0xffffffff
	}
	lapicWrite(lapicInitCnt, uint32(ticks))
	timerArmed = true
}

// eoi acknowledges the interrupt in service.
func eoi() { lapicWrite(lapicEOI, 0) }
