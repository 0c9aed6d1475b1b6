package kernel

import (
	"math/bits"

	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// The 8254 PIT (channel 2, gated through port 0x61) calibrates the TSC.
const (
	pitHz       = 1193182
	pitCh2      = 0x42
	pitCmd      = 0x43
	pitGatePort = 0x61
	pitLatchCh2 = 0x80 // counter latch command for channel 2
	// calibTicks is the calibration window: 10 ms of PIT ticks, well
	// inside the counter's 55 ms wrap.
	calibTicks = pitHz / 100
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

// calibrateTSC measures the TSC rate against the PIT over one window,
// reading both clocks together at its start and at its end, so that time
// the virtual CPU spends descheduled on the host lengthens both alike.
// (Polling for the end of a fixed PIT interval instead charged a late look
// to the TSC alone, and the clock then ran slow for the whole boot.)
func calibrateTSC() {
	gate := cpu.In8(pitGatePort)
	cpu.Out8(pitGatePort, (gate&^0x02)|0x01) // gate on, speaker off
	cpu.Out8(pitCmd, 0xb0)                   // ch 2, lo/hi byte, mode 0
	cpu.Out8(pitCh2, 0xff)
	cpu.Out8(pitCh2, 0xff)
	tsc0, pit0 := readWithTSC(readPIT)
	tsc1, pit1 := tsc0, pit0
	for spins := 0; uint16(pit0-pit1) < calibTicks; spins++ {
		if spins > 1<<24 {
			console.Print("kernel: PIT does not count; assuming a 1 GHz TSC\n")
			setTSCRate(1e9)
			return
		}
		tsc1, pit1 = readWithTSC(readPIT)
	}
	setTSCRate((tsc1 - tsc0) * pitHz / uint64(uint16(pit0-pit1)))
}

// readPIT latches and reads PIT channel 2's count.
func readPIT() uint64 {
	cpu.Out8(pitCmd, pitLatchCh2)
	lo := cpu.In8(pitCh2)
	hi := cpu.In8(pitCh2)
	return uint64(hi)<<8 | uint64(lo)
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

// readRTC reads the CMOS real-time clock as Unix nanoseconds.
func readRTC() int64 {
	rd := func(reg uint8) uint8 {
		cpu.Out8(0x70, reg)
		return cpu.In8(0x71)
	}
	for rd(0x0a)&0x80 != 0 { // update in progress
	}
	sec, min, hour := rd(0x00), rd(0x02), rd(0x04)
	day, mon, year := rd(0x07), rd(0x08), rd(0x09)
	century := rd(0x32)
	if rd(0x0b)&0x04 == 0 { // BCD
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
