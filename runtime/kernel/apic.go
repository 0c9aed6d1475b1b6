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

// x2apic is set when the LAPIC runs in x2APIC mode (CPUID.1:ECX[21]):
// registers are MSRs 0x800 + offset/16 instead of MMIO.
var x2apic bool

const (
	msrX2APICBase = 0x800
	apicBaseX2    = 1 << 10 // IA32_APIC_BASE: x2APIC enable
	apicBaseEN    = 1 << 11 // IA32_APIC_BASE: global enable
	lapicICR      = 0x300
	lapicICRHigh  = 0x310
)

func lapicRead(reg uint64) uint32 {
	if x2apic {
		return uint32(cpu.ReadMSR(uint32(msrX2APICBase + reg>>4)))
	}
	return *(*uint32)(physPtr(lapicBase + reg))
}

func lapicWrite(reg uint64, v uint32) {
	if x2apic {
		cpu.WriteMSR(uint32(msrX2APICBase+reg>>4), uint64(v))
		return
	}
	*(*uint32)(physPtr(lapicBase + reg)) = v
}

// lapicIDValue is this CPU's APIC ID, the destination of MSI messages.
func lapicIDValue() uint32 {
	if x2apic {
		return lapicRead(lapicID)
	}
	return lapicRead(lapicID) >> 24
}

// selfIPI sends vector to this CPU (fixed delivery, "self" shorthand).
func selfIPI(vector uint8) {
	const shorthandSelf = 1 << 18
	if x2apic {
		cpu.WriteMSR(msrX2APICBase+lapicICR>>4, shorthandSelf|uint64(vector))
		return
	}
	lapicWrite(lapicICR, shorthandSelf|uint32(vector))
}

// initInterruptControllers masks the legacy PICs, enables the LAPIC and
// calibrates its timer against the TSC.
func initInterruptControllers() {
	// ICW1-4: remap the PICs to picBase and mask every line. (QEMU's
	// microvm with pic=off has none; the writes then go nowhere.)
	for _, w := range [...][2]uint16{
		{0x20, 0x11}, {0xa0, 0x11}, {0x21, picBase}, {0xa1, picBase + 8},
		{0x21, 4}, {0xa1, 2}, {0x21, 1}, {0xa1, 1}, {0x21, 0xff}, {0xa1, 0xff},
	} {
		cpu.Out8(w[0], uint8(w[1]))
	}
	base := cpu.ReadMSR(cpu.MSRAPICBase)
	lapicBase = base & apicBaseMask
	if _, _, ecx, _ := cpu.CPUID(1, 0); ecx&(1<<21) != 0 {
		cpu.WriteMSR(cpu.MSRAPICBase, base|apicBaseEN|apicBaseX2)
		x2apic = true
	} else if err := mapDevice(lapicBase, 4096); err != nil {
		panicKernel("map LAPIC", lapicBase)
	}
	initIOAPIC()
	lapicWrite(lapicSVR, lapicEnable|vectorSpurious)
	lapicWrite(lapicLVTLint0, lvtMasked)
	lapicWrite(lapicLVTLint1, lvtMasked)
	lapicWrite(lapicLVTError, lvtMasked)
	lapicWrite(lapicDivide, divideBy1)

	// Count down from the maximum for 10 ms of TSC, reading both clocks
	// together at the window's ends (see tscFromPIT).
	lapicWrite(lapicLVTTimer, lvtMasked|vectorTimer)
	lapicWrite(lapicInitCnt, 0xffffffff)
	readCount := func() uint64 { return uint64(lapicRead(lapicCurCnt)) }
	tsc0, cnt0 := readWithTSC(readCount)
	tsc1, cnt1 := tsc0, cnt0
	for tsc1-tsc0 < tscHz/100 {
		tsc1, cnt1 = readWithTSC(readCount)
	}
	lapicWrite(lapicInitCnt, 0)
	lapicHz = (cnt0 - cnt1) * tscHz / (tsc1 - tsc0)
	if lapicHz == 0 {
		console.Print("kernel: LAPIC timer does not count\n")
		lapicHz = 1e9
	}
	lapicWrite(lapicLVTTimer, vectorTimer) // one-shot, unmasked
}

// minTimerNs is the shortest one-shot armTimer sets; a nearer deadline
// waits that long.
const minTimerNs = 10_000

// armTimer makes the LAPIC interrupt after ns nanoseconds (one-shot).
func armTimer(ns int64) {
	if ns < minTimerNs {
		ns = minTimerNs
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

// disarmTimer stops the one-shot (a zero initial count stops the LAPIC
// timer, SDM Vol. 3 §11.5.4).
func disarmTimer() {
	lapicWrite(lapicInitCnt, 0)
	timerArmed = false
}

// eoi acknowledges the interrupt in service.
func eoi() { lapicWrite(lapicEOI, 0) }
