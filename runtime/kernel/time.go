package kernel

import (
	"math/bits"

	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// The TSC is the clock; at boot its rate comes from the first of these
// sources the machine has (see calibrateTSC).
const (
	// CPUID leaf 0x15 (Intel SDM vol. 2A, CPUID "Time Stamp Counter and
	// Nominal Core Crystal Clock Information"): TSC = crystal * EBX/EAX.
	cpuidLeafTSC = 0x15
	// CPUID leaf 0x16: processor base frequency in MHz (EAX).
	cpuidLeafFreq = 0x16
	// Hypervisor leaves (0x40000000: max leaf and vendor); 0x40000010
	// is the timing leaf VMware defined and QEMU/KVM and others follow:
	// EAX = TSC frequency in kHz.
	cpuidHypervisorBase   = 0x40000000
	cpuidHypervisorTiming = 0x40000010
	cpuidHypervisorBit    = 1 << 31 // CPUID.1:ECX bit 31: running under a hypervisor

	// The 8254 PIT (channel 2, gated through port 0x61).
	pitHz       = 1193182
	pitCh2      = 0x42
	pitCmd      = 0x43
	pitGatePort = 0x61
	pitLatchCh2 = 0x80 // counter latch command for channel 2
	// calibTicks is the calibration window: 10 ms of PIT ticks, well
	// inside the counter's 55 ms wrap.
	calibTicks = pitHz / 100
	// pitProbeReads is how many paired reads of an unchanged count mean
	// there is no PIT: the count moves every 0.84 µs and one paired read
	// (several port accesses, each an exit to the VMM) takes longer.
	pitProbeReads = 1000

	// The MC146818 RTC's periodic interrupt flag (register C bit 6, PF)
	// at rate select 6 of register A: 32768 Hz >> 5 = 1024 Hz. QEMU sets
	// PF only while register B's PIE bit is on.
	cmosIndex     = 0x70 // CMOS register select port
	cmosData      = 0x71 // CMOS data port
	rtcRegA       = 0x0a
	rtcRegB       = 0x0b
	rtcRegC       = 0x0c
	rtcRateSelect = 6
	rtcPeriodicHz = 32768 >> (rtcRateSelect - 1)
	rtcRegBPIE    = 1 << 6
	rtcRegCPF     = 1 << 6
	rtcRegAUIP    = 1 << 7 // update in progress
	// rtcCalibPeriods is the RTC window: 10 periods, about 9.8 ms.
	rtcCalibPeriods = 10

	// pairReads is how many times each reading of two clocks is tried;
	// the one taken closest together in TSC ticks is kept.
	pairReads = 5
)

var (
	tscHz    uint64 // TSC ticks per second
	tscBase  uint64 // TSC at boot (nanotime 0)
	tscMult  uint64 // ns per tick, 32.32 fixed point
	wallBase int64  // Unix time in ns at nanotime 0 (from the RTC)
)

// calibrateTSC sets the TSC rate from the first source that works, most
// exact first: what the CPU (CPUID 0x15, crystal and ratio) or the
// hypervisor (0x40000010) states; else a measurement against the HPET
// (pc and q35), whose 64-bit counter no stall of the host can wrap; else
// against the PIT;
// else against the RTC's periodic flag (QEMU's microvm with pit=off under
// TCG, whose CPU states no frequency, has nothing else); else the nominal
// base frequency of CPUID 0x16, which is the TSC's rate only to within
// some tenths of a percent (minutes a day), so a measurement comes first.
// It prints the rate and its source.
func calibrateTSC() {
	hz, src := tscFromCPUID()
	if hz == 0 {
		hz, src = tscFromHPET(), "HPET"
	}
	if hz == 0 {
		hz, src = tscFromPIT(), "PIT"
	}
	if hz == 0 {
		hz, src = tscFromRTC(), "RTC periodic interrupt"
	}
	if hz == 0 {
		hz, src = tscFromBaseFrequency(), "CPUID 0x16 base frequency"
	}
	if hz == 0 {
		hz, src = 1e9, "nothing (no CPUID TSC leaf, PIT or RTC): assumed"
	}
	console.Print("kernel: TSC ")
	console.PrintDec(hz / 1e6)
	console.Print(" MHz from ")
	console.Print(src)
	console.Print("\n")
	setTSCRate(hz)
}

// tscFromCPUID returns the TSC rate the CPU (leaf 0x15) or the hypervisor
// (leaf 0x40000010) states, and which leaf said so; 0 when none does. A
// leaf is read only when the maximum leaf covers it: under TCG, QEMU's
// "max" CPU is AMD-flavoured with a maximum basic leaf of 0xd, and a leaf
// past the maximum returns the highest leaf's data, not zeros.
func tscFromCPUID() (uint64, string) {
	if maxLeaf, _, _, _ := cpu.CPUID(0, 0); maxLeaf >= cpuidLeafTSC {
		den, num, crystal, _ := cpu.CPUID(cpuidLeafTSC, 0)
		if den != 0 && num != 0 && crystal != 0 {
			return uint64(crystal) * uint64(num) / uint64(den), "CPUID 0x15"
		}
	}
	if _, _, ecx, _ := cpu.CPUID(1, 0); ecx&cpuidHypervisorBit != 0 {
		if max, _, _, _ := cpu.CPUID(cpuidHypervisorBase, 0); max >= cpuidHypervisorTiming && max < cpuidHypervisorBase+0x10000 {
			if khz, _, _, _ := cpu.CPUID(cpuidHypervisorTiming, 0); khz != 0 {
				return uint64(khz) * 1000, "CPUID 0x40000010"
			}
		}
	}
	return 0, ""
}

// tscFromBaseFrequency returns CPUID leaf 0x16's processor base frequency,
// the nominal TSC rate of the processors that report it (Intel SDM vol.
// 3B §18.7.3), or 0.
func tscFromBaseFrequency() uint64 {
	if maxLeaf, _, _, _ := cpu.CPUID(0, 0); maxLeaf >= cpuidLeafFreq {
		if mhz, _, _, _ := cpu.CPUID(cpuidLeafFreq, 0); mhz != 0 && mhz < 100_000 {
			return uint64(mhz) * 1e6
		}
	}
	return 0
}

// The HPET (IA-PC HPET specification 1.0a §2.3): QEMU's pc and q35
// machines have one at 0xFED00000; microvm has none.
const (
	hpetBase      = 0xfed00000
	hpetCapID     = 0x000       // bits 63:32: the main counter's period in fs
	hpetConfig    = 0x010       // bit 0 runs the main counter
	hpetCounterLo = 0x0f0       // main counter, low and high halves
	hpetCounterHi = 0x0f4       //
	hpetMaxPeriod = 100_000_000 // fs: the specification's bound (100 ns)
)

// tscFromHPET measures the TSC rate against the HPET's main counter over
// a window of 10 ms, reading both together at its ends as tscFromPIT does.
// The counter has 64 bits, so a window the host stretches by descheduling
// the virtual CPU only measures longer. It returns 0 without an HPET
// (the period reads 0 or out of range).
func tscFromHPET() uint64 {
	if err := mapDevice(hpetBase, 4096); err != nil {
		return 0
	}
	reg := func(off uint64) *uint32 { return (*uint32)(physPtr(hpetBase + off)) }
	period := uint64(*reg(hpetCapID + 4))
	if period == 0 || period > hpetMaxPeriod {
		return 0
	}
	conf := *reg(hpetConfig)
	*reg(hpetConfig) = conf | 1
	defer func() { *reg(hpetConfig) = conf }()
	read := func() uint64 { // the halves, again if the low one wrapped in between
		for {
			hi := *reg(hpetCounterHi)
			lo := *reg(hpetCounterLo)
			if *reg(hpetCounterHi) == hi {
				return uint64(hi)<<32 | uint64(lo)
			}
		}
	}
	hpetHz := 1_000_000_000_000_000 / period
	tsc0, c0 := readWithTSC(read)
	tsc1, c1 := tsc0, c0
	for spins := 0; c1-c0 < hpetHz/100; spins++ {
		if c1 == c0 && spins > pitProbeReads {
			return 0 // the counter does not run
		}
		tsc1, c1 = readWithTSC(read)
	}
	hi, lo := bits.Mul64(tsc1-tsc0, hpetHz) // a long stall would overflow 64 bits
	hz, _ := bits.Div64(hi, lo, c1-c0)
	return hz
}

// tscFromPIT measures the TSC rate against the PIT over one window,
// reading both clocks together at its start and at its end, so that time
// the virtual CPU spends descheduled on the host lengthens both alike.
// (Polling for the end of a fixed PIT interval instead charged a late look
// to the TSC alone, and the clock then ran slow for the whole boot.) A
// window the host stretched past the 16-bit count's wrap (55 ms) would
// undercount the PIT's ticks and make the TSC look several times faster
// (a loaded host did this: "TSC 7066 MHz"). The count starts at its
// maximum in mode 0, whose output (port 0x61 bit 5, where the machine has
// that port: microvm has none) goes high at the wrap and stays high, so a
// window that wrapped is measured again; without the port, the slowest of
// pitAttempts windows is taken, since a wrap only ever makes one faster.
// It returns 0 when the count does not move: no PIT (microvm's pit=off
// reads 0xff from its ports), or when every window wrapped.
func tscFromPIT() uint64 {
	gate := cpu.In8(pitGatePort)
	cpu.Out8(pitGatePort, (gate&^0x02)|0x01) // gate on, speaker off
	var best uint64
	for range pitAttempts {
		cpu.Out8(pitCmd, 0xb0) // ch 2, lo/hi byte, mode 0
		cpu.Out8(pitCh2, 0xff)
		cpu.Out8(pitCh2, 0xff)
		outSeen := cpu.In8(pitGatePort)&pitOut2 == 0 // low once a count is loaded
		tsc0, pit0 := readWithTSC(readPIT)
		tsc1, pit1 := tsc0, pit0
		for spins := 0; uint16(pit0-pit1) < calibTicks; spins++ {
			if pit1 == pit0 && spins > pitProbeReads {
				return 0
			}
			if spins > 1<<24 {
				return 0
			}
			tsc1, pit1 = readWithTSC(readPIT)
		}
		hz := (tsc1 - tsc0) * pitHz / uint64(uint16(pit0-pit1))
		switch {
		case !outSeen:
			if best == 0 || hz < best {
				best = hz
			}
		case cpu.In8(pitGatePort)&pitOut2 == 0:
			return hz
		}
	}
	return best
}

const (
	pitOut2     = 0x20 // port 0x61: channel 2's output
	pitAttempts = 3
)

// readPIT latches and reads PIT channel 2's count.
func readPIT() uint64 {
	cpu.Out8(pitCmd, pitLatchCh2)
	lo := cpu.In8(pitCh2)
	hi := cpu.In8(pitCh2)
	return uint64(hi)<<8 | uint64(lo)
}

// tscFromRTC measures the TSC rate against the RTC's periodic flag over
// rtcCalibPeriods periods: the TSC is read as each period ends (PF is set
// and cleared by reading register C), so the window starts and ends on a
// period boundary. The interrupt the flag also raises reaches nobody: the
// I/O APIC's entries are masked at reset and interrupts are off. It
// returns 0 without an RTC (registers read 0xff) or when the flag never
// comes.
func tscFromRTC() uint64 {
	a := rtcRead(rtcRegA)
	if a == 0xff {
		return 0
	}
	b := rtcRead(rtcRegB)
	rtcWrite(rtcRegA, a&0xf0|rtcRateSelect)
	rtcWrite(rtcRegB, b|rtcRegBPIE)
	rtcRead(rtcRegC)
	defer func() {
		rtcWrite(rtcRegB, b)
		rtcWrite(rtcRegA, a)
		rtcRead(rtcRegC)
	}()
	// waitPeriod returns the TSC as the next period ends; 0 if none does
	// within about 100 ms worth of reads.
	waitPeriod := func() uint64 {
		for spins := 0; spins < 1<<20; spins++ {
			t0 := cpu.RDTSC()
			if rtcRead(rtcRegC)&rtcRegCPF != 0 {
				t1 := cpu.RDTSC()
				return t0 + (t1-t0)/2
			}
		}
		return 0
	}
	if waitPeriod() == 0 { // align to a period boundary
		return 0
	}
	tsc0 := waitPeriod()
	tsc1 := tsc0
	for range rtcCalibPeriods {
		if tsc1 = waitPeriod(); tsc1 == 0 {
			return 0
		}
	}
	return (tsc1 - tsc0) * rtcPeriodicHz / rtcCalibPeriods
}

// rtcRead reads CMOS register reg; rtcWrite writes it.
func rtcRead(reg uint8) uint8 {
	cpu.Out8(cmosIndex, reg)
	return cpu.In8(cmosData)
}

func rtcWrite(reg, v uint8) {
	cpu.Out8(cmosIndex, reg)
	cpu.Out8(cmosData, v)
}

// readWithTSC returns the TSC and what read returns at (nearly) the same
// moment: the TSC halfway between two reads around it, from the tightest
// of pairReads tries (reading a device register exits to the VMM, which a
// busy host can hold up).
func readWithTSC(read func() uint64) (tsc, v uint64) {
	best := ^uint64(0)
	for range pairReads {
		t0 := cpu.RDTSC()
		r := read()
		t1 := cpu.RDTSC()
		if t1-t0 < best {
			best, tsc, v = t1-t0, t0+(t1-t0)/2, r
		}
	}
	return tsc, v
}

// setTSCRate sets the clock's rate and starts it at zero.
func setTSCRate(hz uint64) {
	tscHz = hz
	tscBase = cpu.RDTSC()
	hi, lo := bits.Mul64(1e9, 1<<32)
	tscMult, _ = bits.Div64(hi, lo, tscHz)
	wallBase = readRTC() - nanotime()
}

// nanotime is the monotonic clock: nanoseconds since boot.
func nanotime() int64 {
	d := cpu.RDTSC() - tscBase
	hi, lo := bits.Mul64(d, tscMult)
	return int64(hi<<32 | lo>>32)
}

// readRTC reads the CMOS real-time clock as Unix nanoseconds; 0 (the
// epoch) when there is no RTC: QEMU's microvm under KVM has none by
// default, and its absent ports read 0xff.
func readRTC() int64 {
	rd := rtcRead
	if rd(rtcRegA) == 0xff && rd(rtcRegB) == 0xff {
		console.Print("kernel: no RTC; the wall clock starts at 1970-01-01\n")
		return 0
	}
	for spins := 0; rd(rtcRegA)&rtcRegAUIP != 0; spins++ { // update in progress
		if spins > 1<<20 {
			break
		}
	}
	sec, min, hour := rd(0x00), rd(0x02), rd(0x04)
	day, mon, year := rd(0x07), rd(0x08), rd(0x09)
	century := rd(0x32)
	if rd(rtcRegB)&0x04 == 0 { // BCD
		bcd := func(v uint8) uint8 { return v&0x0f + (v>>4)*10 }
		sec, min, hour = bcd(sec), bcd(min), bcd(hour&0x7f)
		day, mon, year, century = bcd(day), bcd(mon), bcd(year), bcd(century)
	}
	if century == 0 {
		century = 20
	}
	y := int64(century)*100 + int64(year)
	return (daysFromCivil(y, int64(mon), int64(day))*86400 +
		int64(hour)*3600 + int64(min)*60 + int64(sec)) * 1e9
}

// daysFromCivil counts days from 1970-01-01 to y-m-d (proleptic
// Gregorian), after Howard Hinnant's algorithm.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// Clock ids (include/uapi/linux/time.h).
const (
	clockRealtime       = 0
	clockRealtimeCoarse = 5
	clockTAI            = 11
)

func sysClock(clock, ts uint64) int64 {
	if !userRange(ts, 16, true) {
		return -eFAULT
	}
	now := nanotime()
	switch clock {
	case clockRealtime, clockRealtimeCoarse, clockTAI:
		now += wallBase
	case clockProcessCPU:
		now = cpuClock(true, -1)
	case clockThreadCPU:
		now = cpuClock(false, current)
	case 1, 4, 6, 7, 8, 9:
	default:
		return -eINVAL
	}
	b := userBytes(ts, 16)
	le.PutUint64(b, uint64(now/1e9))
	le.PutUint64(b[8:], uint64(now%1e9))
	return 0
}

func sysTimeOfDay(tv uint64) int64 {
	if tv == 0 {
		return 0
	}
	if !userRange(tv, 16, true) {
		return -eFAULT
	}
	now := wallBase + nanotime()
	b := userBytes(tv, 16)
	le.PutUint64(b, uint64(now/1e9))
	le.PutUint64(b[8:], uint64(now%1e9/1e3))
	return 0
}

// readTimespec reads a struct timespec as nanoseconds.
func readTimespec(p uint64) (int64, bool) {
	if !userRange(p, 16, false) {
		return 0, false
	}
	b := userBytes(p, 16)
	sec, nsec := int64(le.Uint64(b)), int64(le.Uint64(b[8:]))
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, false
	}
	if sec > 1<<32 {
		sec = 1 << 32
	}
	return sec*1e9 + nsec, true
}

func sysSleep(req uint64) int64 {
	d, ok := readTimespec(req)
	if !ok {
		return -eFAULT
	}
	block(waitSleep, nanotime()+d)
	return 0
}

const timerAbstime = 1

func sysClockSleep(clock, flags, req uint64) int64 {
	d, ok := readTimespec(req)
	if !ok {
		return -eFAULT
	}
	now := nanotime()
	deadline := now + d
	if flags&timerAbstime != 0 {
		deadline = d
		if clock == clockRealtime {
			deadline -= wallBase
		}
	}
	block(waitSleep, deadline)
	return 0
}

// sysClockRes reports a resolution of 1 ns for every clock.
func sysClockRes(res uint64) int64 {
	if res == 0 {
		return 0
	}
	if !userRange(res, 16, true) {
		return -eFAULT
	}
	b := userBytes(res, 16)
	le.PutUint64(b, 0)
	le.PutUint64(b[8:], 1)
	return 0
}

// sysTimeSeconds is time(2): the wall clock in seconds, also stored at tp
// when it is not nil.
func sysTimeSeconds(tp uint64) int64 {
	t := (wallBase + nanotime()) / 1e9
	if tp != 0 && userRange(tp, 8, true) {
		le.PutUint64(userBytes(tp, 8), uint64(t))
	}
	return t
}
