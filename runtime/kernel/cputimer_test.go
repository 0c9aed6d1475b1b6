package kernel

import "testing"

// The CPU-time timer tests stop the TSC clock (nanotime reads 0) and move
// time with run, which charges the current thread as trap does: a tick is
// the LAPIC one-shot, anything else a system call.

const (
	ms         = int64(1e6)
	profPeriod = 10 * ms // Go's default 100 Hz
)

func setupCPUTimers(t *testing.T) *testKernel {
	t.Helper()
	k := setupKernel(t)
	tscMult = 0
	stats = Stats{}
	sigactions[sigPROF] = sigactionT{handler: 0x500000, flags: saSiginfo | saOnstack, restorer: 0x600000}
	return k
}

// run lets the current thread use d ns of CPU, ending in a timer tick or
// (tick false) a system call.
func (k *testKernel) run(d int64, tick bool) {
	k.clock += d
	chargeCPU(k.clock, tick)
}

// switchTo makes thread i the running one, as schedule would.
func switchTo(i int32) {
	if threads[current].state == threadRunning {
		threads[current].state = threadRunnable
	}
	current = i
	threads[i].state = threadRunning
}

// deliver returns to the current thread as trap does and reports the
// signal it entered a handler for (0 if none) and that signal's si_code
// and the words at +16 and +24 of its siginfo. The handler returns at
// once (its mask is restored).
func (k *testKernel) deliver(t *testing.T) (sig uint64, code int32, w16, w24 uint64) {
	t.Helper()
	th := &threads[current]
	mask := th.sigMask
	f := Frame{RIP: 0x401234, RSP: k.userBase + 0x20000, RFLAGS: 0x202, CS: selKernelCode, SS: selKernelData}
	deliverPending(&f)
	if f.RIP == 0x401234 {
		return 0, 0, 0, 0
	}
	if f.RIP != sigactions[f.RDI].handler {
		t.Fatalf("returned to %#x, neither the thread nor a handler", f.RIP)
	}
	info := userBytes(f.RSI, siginfoSize)
	th.sigMask, th.inSignal = mask, 0
	return f.RDI, int32(le64.Uint32(info[8:])), le64.Uint64(info[16:]), le64.Uint64(info[24:])
}

// timerCreateProf creates the timer Go's setThreadCPUProfiler creates for
// thread i and returns its id.
func (k *testKernel) timerCreateProf(t *testing.T, i int32, value uint64) uint64 {
	t.Helper()
	sev, b := k.at(0x1000, sigeventSize)
	clear(b)
	le64.PutUint64(b, value)
	le64.PutUint32(b[8:], sigPROF)
	le64.PutUint32(b[12:], sigevThreadID)
	le64.PutUint32(b[16:], uint32(threads[i].tid))
	idp, ib := k.at(0x1100, 4)
	le64.PutUint32(ib, 0xdead)
	if _, r := call(sysTimerCreate, clockThreadCPU, sev, idp); r != 0 {
		t.Fatalf("timer_create returned %d", r)
	}
	return uint64(le64.Uint32(ib))
}

// itimerspec and itimerval write the structures timer_settime and
// setitimer take and return their address.
func (k *testKernel) itimerspec(interval, value int64) uint64 {
	p, b := k.at(0x1200, 32)
	le64.PutUint64(b, uint64(interval/1e9))
	le64.PutUint64(b[8:], uint64(interval%1e9))
	le64.PutUint64(b[16:], uint64(value/1e9))
	le64.PutUint64(b[24:], uint64(value%1e9))
	return p
}

func (k *testKernel) itimerval(interval, value int64) uint64 {
	p, b := k.at(0x1300, 32)
	le64.PutUint64(b, uint64(interval/1e9))
	le64.PutUint64(b[8:], uint64(interval%1e9/1e3))
	le64.PutUint64(b[16:], uint64(value/1e9))
	le64.PutUint64(b[24:], uint64(value%1e9/1e3))
	return p
}

func TestThreadCPUTimerQueuesSIGPROFWithSITimerAfterItsIntervalOfCPUTime(t *testing.T) {
	k := setupCPUTimers(t)
	me := current
	id := k.timerCreateProf(t, me, 0x77)
	if _, r := call(sysTimerSettime, id, 0, k.itimerspec(profPeriod, 3*ms), 0); r != 0 {
		t.Fatalf("timer_settime returned %d", r)
	}
	k.run(2*ms, true)
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Fatalf("signal %d after 2 ms of a 3 ms first interval", sig)
	}
	// Other threads' CPU time and idle time do not count.
	other := newThread()
	switchTo(other)
	k.run(50*ms, true)
	switchTo(0)
	k.run(50*ms, true)
	switchTo(me)
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Fatalf("signal %d after other threads ran", sig)
	}
	k.run(1*ms, true)
	sig, code, w16, w24 := k.deliver(t)
	if sig != sigPROF || code != -2 {
		t.Fatalf("after 3 ms of CPU: signal %d code %d, want SIGPROF with SI_TIMER (-2)", sig, code)
	}
	if timerID, overrun := uint32(w16), uint32(w16>>32); uint64(timerID) != id || overrun != 0 || w24 != 0x77 {
		t.Errorf("siginfo: si_timerid %d si_overrun %d si_value %#x, want %d, 0, 0x77", timerID, overrun, w24, id)
	}
	// Then one every interval.
	for i := 0; i < 5; i++ {
		k.run(profPeriod-2*timerSlack, true)
		if sig, _, _, _ := k.deliver(t); sig != 0 {
			t.Fatalf("period %d: signal before the interval was used", i)
		}
		k.run(2*timerSlack, true)
		if sig, code, _, _ := k.deliver(t); sig != sigPROF || code != -2 {
			t.Fatalf("period %d: signal %d code %d, want SIGPROF SI_TIMER", i, sig, code)
		}
	}
	if stats.CPUTimerSignals != 6 {
		t.Errorf("CPUTimerSignals %d, want 6", stats.CPUTimerSignals)
	}
}

// The expiry is taken by the tick the LAPIC was set for, on the code it
// interrupts, not by a system call that happens to come first.
func TestCPUTimerExpiresOnTheTickNotOnASystemCall(t *testing.T) {
	k := setupCPUTimers(t)
	id := k.timerCreateProf(t, current, 0)
	call(sysTimerSettime, id, 0, k.itimerspec(profPeriod, profPeriod), 0)
	k.run(4*ms, false)
	if got, want := cpuTimerDeadline(k.clock), k.clock+6*ms; got != want {
		t.Errorf("LAPIC deadline %d, want %d: when the running thread has used its interval", got, want)
	}
	k.run(6*ms+5000, false)
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Fatalf("a system call took the expiry (signal %d)", sig)
	}
	if got := cpuTimerDeadline(k.clock); got != k.clock {
		t.Errorf("overdue expiry: LAPIC deadline %d, want now (%d)", got, k.clock)
	}
	k.run(1000, true)
	if sig, code, _, _ := k.deliver(t); sig != sigPROF || code != -2 {
		t.Fatalf("tick after the expiry: signal %d code %d, want SIGPROF SI_TIMER", sig, code)
	}
	// A tick a little early (the LAPIC's calibration) still counts.
	k.run(profPeriod-timerSlack/2, true)
	if sig, _, _, _ := k.deliver(t); sig != sigPROF {
		t.Errorf("tick %d ns early: no SIGPROF", timerSlack/2)
	}
	// No timer on the running thread's clock or the process's: no tick.
	switchTo(newThread())
	if got := cpuTimerDeadline(k.clock); got != 0 {
		t.Errorf("thread without timers: LAPIC deadline %d, want none", got)
	}
}

func TestTimerDeleteStopsItAndWithdrawsItsPendingSignal(t *testing.T) {
	k := setupCPUTimers(t)
	id := k.timerCreateProf(t, current, 0)
	call(sysTimerSettime, id, 0, k.itimerspec(ms, ms), 0)
	k.run(ms, true)
	if threads[current].sigPending&sigBit(sigPROF) == 0 {
		t.Fatal("SIGPROF not pending after the interval")
	}
	if _, r := call(sysTimerDelete, id); r != 0 {
		t.Fatalf("timer_delete returned %d", r)
	}
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Errorf("signal %d of a deleted timer delivered", sig)
	}
	k.run(100*ms, true)
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Errorf("signal %d after timer_delete", sig)
	}
	if cpuTimerDeadline(k.clock) != 0 {
		t.Errorf("a deleted timer still sets the LAPIC")
	}
	for name, r := range map[string]int64{
		"timer_delete again": func() int64 { _, r := call(sysTimerDelete, id); return r }(),
		"timer_settime":      func() int64 { _, r := call(sysTimerSettime, id, 0, k.itimerspec(ms, ms), 0); return r }(),
		"timer_gettime":      func() int64 { _, r := call(sysTimerGettime, id, k.itimerspec(0, 0)); return r }(),
	} {
		if r != -eINVAL {
			t.Errorf("%s of a deleted timer returned %d, want -EINVAL", name, r)
		}
	}
	// Its id is free for the next timer.
	if again := k.timerCreateProf(t, current, 0); again != id {
		t.Errorf("new timer got id %d, want the freed %d", again, id)
	}
}

func TestSetitimerProfQueuesSIGPROFWithSIKernelOnTheRunningThread(t *testing.T) {
	k := setupCPUTimers(t)
	first := current
	if _, r := call(sysSetitimer, itimerProf, k.itimerval(profPeriod, profPeriod), 0); r != 0 {
		t.Fatalf("setitimer returned %d", r)
	}
	// Process CPU time: 6 ms on one thread, 4 on another.
	k.run(6*ms, true)
	second := newThread()
	switchTo(second)
	k.run(4*ms, true)
	if threads[first].sigPending != 0 {
		t.Errorf("the thread not running at the expiry got the signal")
	}
	if sig, code, _, _ := k.deliver(t); sig != sigPROF || code != siKernel {
		t.Fatalf("signal %d code %#x, want SIGPROF with SI_KERNEL", sig, code)
	}
	cur, cb := k.at(0x1400, 32)
	k.run(3*ms, false)
	if _, r := call(sysGetitimer, itimerProf, cur); r != 0 {
		t.Fatalf("getitimer returned %d", r)
	}
	if iv, left := le64.Uint64(cb[8:]), le64.Uint64(cb[24:]); iv != 10000 || left != 7000 {
		t.Errorf("getitimer: interval %d µs, %d µs left; want 10000 and 7000", iv, left)
	}
	// Disarming returns the old value and stops the signals.
	if _, r := call(sysSetitimer, itimerProf, k.itimerval(0, 0), cur); r != 0 || le64.Uint64(cb[24:]) != 7000 {
		t.Errorf("disarm: %d, old value %d µs left", r, le64.Uint64(cb[24:]))
	}
	k.run(100*ms, true)
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Errorf("signal %d after disarming", sig)
	}
	for _, which := range []uint64{0, 1, 3} { // ITIMER_REAL, ITIMER_VIRTUAL, bad
		if _, r := call(sysSetitimer, which, k.itimerval(ms, ms), 0); r != -eINVAL {
			t.Errorf("setitimer(%d) returned %d, want -EINVAL", which, r)
		}
	}
	if _, r := call(sysSetitimer, itimerProf, k.itimerval(0, 0)+8, 0); r != 0 {
		t.Errorf("setitimer with a zero value returned %d", r)
	}
}

// Go runs both: a thread with its own timer counts only SI_TIMER, so one
// SIGPROF carries the timer's siginfo when both expire together.
func TestSetitimerSignalMergesIntoAThreadTimersSignal(t *testing.T) {
	k := setupCPUTimers(t)
	id := k.timerCreateProf(t, current, 0)
	call(sysTimerSettime, id, 0, k.itimerspec(profPeriod, profPeriod), 0)
	call(sysSetitimer, itimerProf, k.itimerval(profPeriod, profPeriod), 0)
	k.run(profPeriod, true)
	if sig, code, _, _ := k.deliver(t); sig != sigPROF || code != -2 {
		t.Fatalf("signal %d code %d, want SIGPROF with SI_TIMER", sig, code)
	}
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Errorf("a second signal %d", sig)
	}
}

func TestExpiriesWhileTheSignalIsPendingCountAsOverruns(t *testing.T) {
	k := setupCPUTimers(t)
	id := k.timerCreateProf(t, current, 0)
	call(sysTimerSettime, id, 0, k.itimerspec(ms, ms), 0)
	// Blocked during a handler: the expiries pile up.
	threads[current].sigMask = sigBit(sigPROF)
	k.run(ms, true)
	k.run(ms, true)
	k.run(ms+ms/2, true) // one interval skipped whole
	threads[current].sigMask = 0
	sig, code, w16, _ := k.deliver(t)
	if sig != sigPROF || code != -2 || uint32(w16>>32) != 2 {
		t.Fatalf("signal %d code %d si_overrun %d, want SIGPROF SI_TIMER with 2 overruns", sig, code, uint32(w16>>32))
	}
	if _, r := call(sysTimerGetoverrun, id); r != 2 {
		t.Errorf("timer_getoverrun %d, want 2", r)
	}
	// The timer kept its phase: next expiry at 4 ms.
	k.run(ms/2, true)
	if sig, _, _, _ := k.deliver(t); sig != sigPROF {
		t.Errorf("no signal at the next whole interval")
	}
}

func TestTimerGettimeAndSettimeReportIntervalAndTimeLeft(t *testing.T) {
	k := setupCPUTimers(t)
	id := k.timerCreateProf(t, current, 0)
	old, ob := k.at(0x1400, 32)
	if _, r := call(sysTimerSettime, id, 0, k.itimerspec(profPeriod, 5*ms), old); r != 0 || le64.Uint64(ob[16:]) != 0 || le64.Uint64(ob[24:]) != 0 {
		t.Fatalf("first timer_settime: %d, old value %v (want disarmed)", r, ob)
	}
	k.run(2*ms, false)
	if _, r := call(sysTimerGettime, id, old); r != 0 {
		t.Fatalf("timer_gettime returned %d", r)
	}
	if iv, left := le64.Uint64(ob[8:]), le64.Uint64(ob[24:]); iv != uint64(profPeriod) || left != uint64(3*ms) {
		t.Errorf("timer_gettime: interval %d ns, %d ns left; want %d and %d", iv, left, profPeriod, 3*ms)
	}
	// An absolute expiry is a reading of the clock.
	call(sysTimerSettime, id, timerAbstime, k.itimerspec(0, 12*ms), 0)
	call(sysTimerGettime, id, old)
	if left := le64.Uint64(ob[24:]); left != uint64(10*ms) {
		t.Errorf("TIMER_ABSTIME at 12 ms with 2 ms used: %d ns left, want %d", left, 10*ms)
	}
	p, b := k.at(0x1200, 32)
	le64.PutUint64(b[24:], 1e9) // tv_nsec out of range
	if _, r := call(sysTimerSettime, id, 0, p, 0); r != -eINVAL {
		t.Errorf("tv_nsec of 1e9 returned %d, want -EINVAL", r)
	}
	if _, r := call(sysTimerSettime, id, 0, 8, 0); r != -eFAULT {
		t.Errorf("bad pointer returned %d, want -EFAULT", r)
	}
}

func TestTimerCreateTakesOnlyCPUClocksAndKnownThreads(t *testing.T) {
	k := setupCPUTimers(t)
	idp, _ := k.at(0x1100, 4)
	sev, b := k.at(0x1000, sigeventSize)
	setSev := func(notify, signo, tid uint32) {
		clear(b)
		le64.PutUint32(b[8:], signo)
		le64.PutUint32(b[12:], notify)
		le64.PutUint32(b[16:], tid)
	}
	me := uint32(threads[current].tid)
	otherThreadClock := int32(^2<<3 | 6) // MAKE_THREAD_CPUCLOCK(2, CPUCLOCK_SCHED)
	for _, tc := range []struct {
		name   string
		clock  uint64
		notify uint32
		signo  uint32
		tid    uint32
		want   int64
	}{
		{"thread CPU clock, SIGEV_THREAD_ID", clockThreadCPU, sigevThreadID, sigPROF, me, 0},
		{"process CPU clock, SIGEV_SIGNAL", clockProcessCPU, sigevSignal, sigPROF, 0, 0},
		{"SIGEV_NONE", clockThreadCPU, sigevNone, 0, 0, 0},
		{"CLOCK_MONOTONIC is not provided", 1, sigevSignal, sigPROF, 0, -eOPNOTSUPP},
		{"CLOCK_REALTIME is not provided", 0, sigevSignal, sigPROF, 0, -eOPNOTSUPP},
		{"unknown clock", 99, sigevSignal, sigPROF, 0, -eINVAL},
		{"another thread's CPU clock", uint64(uint32(otherThreadClock)), sigevSignal, sigPROF, 0, -eINVAL},
		{"SIGEV_THREAD_ID to no thread", clockThreadCPU, sigevThreadID, sigPROF, 999, -eINVAL},
		{"unknown notify kind", clockThreadCPU, 7, sigPROF, 0, -eINVAL},
		{"signal 0", clockThreadCPU, sigevSignal, 0, 0, -eINVAL},
		{"signal 65", clockThreadCPU, sigevSignal, 65, 0, -eINVAL},
	} {
		setSev(tc.notify, tc.signo, tc.tid)
		if _, r := call(sysTimerCreate, tc.clock, sev, idp); r != tc.want {
			t.Errorf("%s: timer_create returned %d, want %d", tc.name, r, tc.want)
		}
	}
	setSev(sigevThreadID, sigPROF, me)
	if _, r := call(sysTimerCreate, clockThreadCPU, sev, 8); r != -eFAULT {
		t.Errorf("bad timerid pointer returned %d, want -EFAULT", r)
	}
	// Without a sigevent: SIGALRM to the process, si_value the id.
	_, ib := k.at(0x1100, 4)
	if _, r := call(sysTimerCreate, clockProcessCPU, 0, idp); r != 0 {
		t.Fatalf("timer_create without a sigevent returned %d", r)
	}
	if tm := timerByID(uint64(le64.Uint32(ib))); tm.signo != sigALRM || tm.notify != sigevSignal || tm.value != uint64(le64.Uint32(ib)) {
		t.Errorf("default sigevent: %+v", *tm)
	}
}

func TestThreadCPUClockReadsTheThreadsCPUTime(t *testing.T) {
	k := setupCPUTimers(t)
	me := current
	k.run(7*ms, false)
	other := newThread()
	switchTo(other)
	k.run(5*ms, false)
	switchTo(me)
	ts, b := k.at(0, 16)
	for _, tc := range []struct {
		clock uint64
		want  int64
	}{{clockThreadCPU, 7 * ms}, {clockProcessCPU, 12 * ms}} {
		if _, r := call(sysClockGettime, tc.clock, ts); r != 0 {
			t.Fatalf("clock_gettime(%d) returned %d", tc.clock, r)
		}
		if got := int64(le64.Uint64(b))*1e9 + int64(le64.Uint64(b[8:])); got != tc.want {
			t.Errorf("clock_gettime(%d) = %d ns, want %d", tc.clock, got, tc.want)
		}
	}
}

// A thread's exit disarms the timers on its clock; a thread that takes its
// slot later does not inherit them.
func TestThreadExitDisarmsTimersOnItsClock(t *testing.T) {
	k := setupCPUTimers(t)
	me := current
	id := k.timerCreateProf(t, me, 0)
	call(sysTimerSettime, id, 0, k.itimerspec(ms, ms), 0)
	call(sysExit, 0)
	i := newThread()
	if i != me {
		t.Fatalf("new thread took slot %d, want the freed %d", i, me)
	}
	switchTo(i)
	k.run(10*ms, true)
	if sig, _, _, _ := k.deliver(t); sig != 0 {
		t.Errorf("a new thread got signal %d from its slot's previous owner's timer", sig)
	}
	if _, r := call(sysTimerSettime, id, 0, k.itimerspec(ms, ms), 0); r != -eSRCH {
		t.Errorf("timer_settime on an exited thread's clock returned %d, want -ESRCH", r)
	}
}
