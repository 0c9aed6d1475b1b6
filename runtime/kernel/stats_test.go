package kernel

import "testing"

// The idle-time tests run on the CPU-time tests' stopped clock (see
// cputimer_test.go): run charges the current thread, switchTo(0) hands the
// CPU to the idle thread.

// readStats reads the counters as a program does, through SysKernelStats
// into the program's memory.
func (k *testKernel) readStats(t *testing.T) Stats {
	t.Helper()
	p, b := k.at(0x2000, statsWords*8)
	if _, r := call(SysKernelStats, p, statsWords*8); r != 0 {
		t.Fatalf("SysKernelStats returned %d", r)
	}
	var s Stats
	for i, w := range s.words() {
		*w = le64.Uint64(b[i*8:])
	}
	return s
}

func TestIdleTimeIsTheIdleThreadsTimeAndUptimeMinusItTheBusyTime(t *testing.T) {
	k := setupCPUTimers(t)
	me := current
	k.run(3*ms, false)
	switchTo(0)
	k.run(5*ms, true) // halted until a timer tick
	switchTo(me)
	k.run(2*ms, true)
	other := newThread()
	switchTo(other)
	k.run(4*ms, false)
	switchTo(0)
	k.run(7*ms, false) // halted until a device interrupt
	switchTo(me)
	k.run(1*ms, false)

	s := k.readStats(t)
	if s.IdleTime != uint64(12*ms) {
		t.Errorf("IdleTime %d ns, want %d: the idle thread's two stretches", s.IdleTime, 12*ms)
	}
	if s.Uptime != uint64(k.clock) {
		t.Errorf("Uptime %d ns, want the last accounting point %d", s.Uptime, k.clock)
	}
	if busy := int64(s.Uptime - s.IdleTime); busy != 10*ms || busy != procCPU {
		t.Errorf("Uptime - IdleTime = %d ns, want the threads' 10 ms (process CPU time %d)", busy, procCPU)
	}
}

func TestIdleTimeCountsNothingTwice(t *testing.T) {
	k := setupCPUTimers(t)
	switchTo(0)
	k.run(5*ms, true)
	// A second accounting point at the same instant, or one the clock
	// went back for, charges nothing.
	chargeCPU(k.clock, false)
	chargeCPU(k.clock-ms, false)
	if stats.IdleTime != uint64(5*ms) || accountedAt != 5*ms {
		t.Errorf("IdleTime %d, accounted up to %d; want both 5 ms", stats.IdleTime, accountedAt)
	}
}

// With the clock running, a read charges the caller's time up to the call:
// the pair is as of the read, and still exact.
func TestReadingTheCountersChargesTheCallerUpToTheCall(t *testing.T) {
	k := setupCPUTimers(t)
	me := current
	switchTo(0)
	k.run(5*ms, false)
	switchTo(me)
	k.run(ms, false)
	tscMult = 1 << 32 // nanotime reads the TSC, far past k.clock
	before := nanotime()
	s := k.readStats(t)
	if int64(s.Uptime) < before {
		t.Errorf("Uptime %d ns, before the read's clock %d", s.Uptime, before)
	}
	if s.IdleTime != uint64(5*ms) {
		t.Errorf("IdleTime %d ns, want 5 ms: the caller's time is busy", s.IdleTime)
	}
	if busy := int64(s.Uptime - s.IdleTime); busy != procCPU {
		t.Errorf("Uptime - IdleTime = %d ns, want the process CPU time %d", busy, procCPU)
	}
}

func TestKernelStatsRejectsAShortOrBadBuffer(t *testing.T) {
	k := setupCPUTimers(t)
	p, _ := k.at(0x2000, statsWords*8)
	// A buffer sized for the six counters before IdleTime and Uptime.
	if _, r := call(SysKernelStats, p, 6*8); r != -eINVAL {
		t.Errorf("a 48-byte buffer returned %d, want -EINVAL", r)
	}
	if _, r := call(SysKernelStats, 8, statsWords*8); r != -eFAULT {
		t.Errorf("a bad pointer returned %d, want -EFAULT", r)
	}
}
