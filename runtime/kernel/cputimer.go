package kernel

// CPU-time clocks and the timers that run on them, which Go's CPU profiler
// (runtime/pprof, net/http/pprof) needs. Go 1.26 on Linux arms the
// process-wide setitimer(ITIMER_PROF) and gives every M that runs
// goroutines a timer of its own, timer_create(CLOCK_THREAD_CPUTIME_ID,
// {SIGEV_THREAD_ID, SIGPROF, tid}) with timer_settime; its handler
// (runtime.validSIGPROF) counts a SIGPROF with si_code SI_TIMER on a thread
// that has its own timer, and one with SI_KERNEL on a thread that has none.
//
// # Accounting
//
// CPU time is charged at one point of every trap (chargeCPU): the time
// since the previous point goes to the thread that was running then, and
// to the process; time the idle thread had is nobody's, and counts as the
// CPU's idle time (Stats.IdleTime, charged up to Stats.Uptime). A thread's
// CPU time so includes its system calls and the interrupts taken while it
// runs, as Linux's CLOCK_THREAD_CPUTIME_ID (user plus system time,
// interrupts charged to the task they interrupt) does.
//
// # Expiry
//
// An armed timer expires when its clock reaches next. rearmTimer sets the
// LAPIC one-shot no later than the moment the running thread's CPU time
// (or the process's) reaches its nearest expiry, and the check runs at the
// accounting point of that tick (chargeCPU), so a thread that runs flat
// out gets its SIGPROF after its interval of CPU time, on the code the
// tick interrupted, not at the next time-slice tick. The signal is queued
// on its thread (the timer's SIGEV_THREAD_ID thread, else the one whose
// CPU time made it expire) and deliverPending delivers it on the
// interrupted context with the timer's siginfo (queuedSigInfo). A thread
// that blocked in the system call that used up its interval is not woken
// for it: it takes the signal when it next runs, with no EINTR.

// Clock ids (include/uapi/linux/time.h) of the CPU-time clocks.
const (
	clockProcessCPU = 2 // CLOCK_PROCESS_CPUTIME_ID
	clockThreadCPU  = 3 // CLOCK_THREAD_CPUTIME_ID
	maxClockID      = 11
)

// sigevent notification kinds (include/uapi/asm-generic/siginfo.h).
const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThread   = 2 // glibc's; the kernel treats it as SIGEV_SIGNAL
	sigevThreadID = 4

	sigeventSize = 64 // sizeof(struct sigevent)
)

// setitimer's timers (include/uapi/linux/time.h); only ITIMER_PROF is
// provided.
const itimerProf = 2

// maxTimers bounds the POSIX timers. Go's profiler makes one per thread
// it samples; past this it samples the thread with setitimer's signal.
const maxTimers = 256

// timerSlack is how close to a deadline (slice end, CPU-time expiry) a
// tick counts as reaching it: the LAPIC, calibrated against the TSC at
// boot, may fire a little early, and armTimer cannot arm anything nearer
// than minTimerNs anyway.
const timerSlack = 50_000

// cpuTimer is a POSIX interval timer (timer_create) or the process's
// ITIMER_PROF, on a CPU-time clock. Times are clock readings in ns.
type cpuTimer struct {
	used    bool   // the slot holds a timer (timer_create .. timer_delete)
	process bool   // the clock is the process's CPU time, else clockOf's
	kernel  bool   // setitimer's: its signal says SI_KERNEL, not SI_TIMER
	clockOf int32  // thread whose CPU time the clock reads; -1 once it exited
	notify  int32  // sigevSignal, sigevNone or sigevThreadID
	target  int32  // thread the signal goes to (sigevThreadID); -1 once it exited
	signo   uint64 // signal sent at expiry
	value   uint64 // sigev_value, handed back in si_value

	next     int64 // clock reading at which it expires next; 0: disarmed
	interval int64 // period after an expiry; 0: one-shot
	// overrun counts expiries not signalled since its signal was queued;
	// lastOverrun is the count the last delivery reported.
	overrun, lastOverrun int32
	queuedOn             int32 // thread its signal is pending on, or -1
}

var (
	// timers are the POSIX timers; the timer id is the index. The scans
	// stop at timersTop, one past the highest slot used.
	timers    [maxTimers]cpuTimer
	timersTop int
	// itimer is setitimer(ITIMER_PROF): SIGPROF with SI_KERNEL to the
	// running thread each interval of process CPU time.
	itimer cpuTimer
	// procCPU is the CPU time of all threads, charged up to accountedAt.
	procCPU int64
	// procTimerNext is the nearest expiry of the armed process-clock
	// timers (0 if none); thread.cpuTimerNext is the same per thread.
	procTimerNext int64
	// accountedAt is the nanotime up to which CPU time has been charged.
	accountedAt int64
)

// resetCPUClocks clears every timer and clock (at boot, and in tests).
func resetCPUClocks() {
	clear(timers[:timersTop]) // the rest was never used: its bss pages stay untouched
	timersTop = 0
	itimer = cpuTimer{used: true, process: true, kernel: true, clockOf: -1, target: -1,
		notify: sigevSignal, signo: sigPROF, queuedOn: -1}
	procCPU, procTimerNext, accountedAt = 0, 0, 0
}

// chargeCPU gives the time since the last accounting point to the thread
// that ran it (the current one, before schedule). On a timer tick it then
// fires the CPU-time timers that have expired. Only a tick does, as on
// Linux, whose CPU timers run from the scheduler tick: a check at every
// system call would hand the sample to whichever call came first after
// the expiry rather than to the code the tick interrupts (under TCG the
// LAPIC fires tens of microseconds late, and a Go program may make a
// system call as often as that). rearmTimer aims a tick at the running
// thread's next expiry, or at once if one is overdue, so a thread that
// used up its interval in a system call and blocked gets its signal as
// soon as it runs again. A tick within timerSlack before the expiry
// counts as reaching it.
func chargeCPU(now int64, tick bool) {
	if current == 0 {
		if d := now - accountedAt; d > 0 {
			accountedAt = now
			stats.IdleTime += uint64(d)
		}
		return
	}
	t := &threads[current]
	if d := now - accountedAt; d > 0 {
		accountedAt = now
		t.cpuTime += d
		procCPU += d
	}
	if tick && (t.cpuTimerNext != 0 && t.cpuTime+timerSlack >= t.cpuTimerNext ||
		procTimerNext != 0 && procCPU+timerSlack >= procTimerNext) {
		expireCPUTimers(current)
	}
}

// expireCPUTimers fires the timers whose clock is within timerSlack of
// their expiry; running is the thread whose CPU time got them there.
func expireCPUTimers(running int32) {
	for k := range timersTop {
		if tm := &timers[k]; tm.used && tm.next != 0 {
			if r := tm.charged(); r+timerSlack >= tm.next {
				tm.expire(r, running)
			}
		}
	}
	if r := procCPU; itimer.next != 0 && r+timerSlack >= itimer.next {
		itimer.expire(r, running)
	}
	updateCPUDeadlines()
}

// charged reads tm's clock as charged so far (at an accounting point, the
// clock's exact value).
func (tm *cpuTimer) charged() int64 {
	if tm.process {
		return procCPU
	}
	if tm.clockOf < 0 {
		return 0
	}
	return threads[tm.clockOf].cpuTime
}

// read reads tm's clock during a system call: what is charged, plus the
// time the running thread has had since the last accounting point if the
// clock counts it.
func (tm *cpuTimer) read() int64 {
	return cpuClock(tm.process, tm.clockOf)
}

// cpuClock reads the process's CPU-time clock, or thread i's.
func cpuClock(process bool, i int32) int64 {
	var v int64
	switch {
	case process:
		v = procCPU
	case i >= 0:
		v = threads[i].cpuTime
	}
	if current != 0 && (process || i == current) {
		if d := nanotime() - accountedAt; d > 0 {
			v += d
		}
	}
	return v
}

// expire handles an expiry of tm, whose clock reads now: it moves next on
// by whole intervals (those skipped count as overruns) or disarms a
// one-shot, and queues the signal unless the last one is still pending.
func (tm *cpuTimer) expire(now int64, running int32) {
	if tm.interval > 0 {
		missed := int64(0)
		if now > tm.next {
			missed = (now - tm.next) / tm.interval
		}
		tm.next += (missed + 1) * tm.interval
		tm.addOverrun(missed)
	} else {
		tm.next = 0
	}
	dest := running
	switch tm.notify {
	case sigevNone:
		return
	case sigevThreadID:
		dest = tm.target
	}
	if tm.queuedOn >= 0 {
		tm.addOverrun(1) // one signal stands for both expiries
		return
	}
	if dest <= 0 || threads[dest].state == threadFree {
		return
	}
	t := &threads[dest]
	bit := sigBit(tm.signo)
	t.sigPending |= bit
	if tm.kernel {
		t.sigKernel |= bit
	} else {
		t.sigTimer |= bit
	}
	tm.queuedOn = dest
	stats.CPUTimerSignals++
}

// addOverrun adds n to the overrun count, saturating as Linux does at
// DELAYTIMER_MAX (INT_MAX).
func (tm *cpuTimer) addOverrun(n int64) {
	if n > int64(1<<31-1-tm.overrun) {
		tm.overrun = 1<<31 - 1
		return
	}
	tm.overrun += int32(n)
}

// updateCPUDeadlines recomputes each thread's and the process's nearest
// expiry after timers changed.
func updateCPUDeadlines() {
	for i := range threadsTop {
		threads[i].cpuTimerNext = 0
	}
	procTimerNext = 0
	for k := range timersTop {
		noteDeadline(&timers[k])
	}
	noteDeadline(&itimer)
}

// noteDeadline brings the nearest expiry of tm's clock down to tm's.
func noteDeadline(tm *cpuTimer) {
	if !tm.used || tm.next == 0 {
		return
	}
	p := &procTimerNext
	if !tm.process {
		if tm.clockOf < 0 {
			return
		}
		p = &threads[tm.clockOf].cpuTimerNext
	}
	if *p == 0 || tm.next < *p {
		*p = tm.next
	}
}

// cpuTimerDeadline is the nanotime at which the running thread, if it
// keeps the CPU from now (an accounting point), brings its own clock or
// the process's to the nearest expiry; 0 if no timer waits on either.
func cpuTimerDeadline(now int64) int64 {
	if current == 0 {
		return 0
	}
	t := &threads[current]
	rem, armed := int64(0), false
	if t.cpuTimerNext != 0 {
		rem, armed = t.cpuTimerNext-t.cpuTime, true
	}
	if procTimerNext != 0 {
		if r := procTimerNext - procCPU; !armed || r < rem {
			rem, armed = r, true
		}
	}
	if !armed {
		return 0
	}
	return now + max(rem, 0)
}

// queuedSigInfo returns the siginfo for signal sig, about to be delivered
// to thread i: a timer's (SI_TIMER with its id, overrun and value) or
// setitimer's (SI_KERNEL) if one queued it, else SI_TKILL. A second timer
// queued with the same signal stays pending for the next delivery;
// setitimer's SIGPROF merges into a timer's.
func queuedSigInfo(i int32, sig uint64) SigFault {
	t := &threads[i]
	bit := sigBit(sig)
	sf := SigFault{signo: sig, code: siTkill}
	if t.sigTimer&bit != 0 {
		t.sigTimer &^= bit
		found := false
		for k := range timersTop {
			tm := &timers[k]
			if !tm.used || tm.queuedOn != i || tm.signo != sig {
				continue
			}
			if found {
				t.sigTimer |= bit
				t.sigPending |= bit
				break
			}
			found = true
			sf.code, sf.timerID, sf.overrun, sf.value = siTimer, int32(k), tm.overrun, tm.value
			tm.lastOverrun, tm.overrun, tm.queuedOn = tm.overrun, 0, -1
		}
	}
	if t.sigKernel&bit != 0 {
		t.sigKernel &^= bit
		itimer.queuedOn = -1
		if sf.code == siTkill {
			sf.code = siKernel
		}
	}
	return sf
}

// unqueue withdraws tm's pending signal (the timer is being re-armed or
// deleted; Linux drops such a signal too), unless something else queued
// the same signal on that thread.
func (tm *cpuTimer) unqueue() {
	i := tm.queuedOn
	if i < 0 {
		return
	}
	tm.queuedOn = -1
	tm.overrun = 0
	t := &threads[i]
	bit := sigBit(tm.signo)
	other := false
	for k := range timersTop {
		if o := &timers[k]; o.used && o.queuedOn == i && o.signo == tm.signo {
			other = true
		}
	}
	if !other {
		t.sigTimer &^= bit
		if t.sigKernel&bit == 0 {
			t.sigPending &^= bit
		}
	}
}

// cpuTimersThreadExit disarms the timers on thread i's clock or aimed at
// it, and forgets the signals queued on it.
func cpuTimersThreadExit(i int32) {
	for k := range timersTop {
		tm := &timers[k]
		if !tm.used {
			continue
		}
		if tm.queuedOn == i {
			tm.queuedOn = -1
		}
		if !tm.process && tm.clockOf == i {
			tm.clockOf, tm.next = -1, 0
		}
		if tm.notify == sigevThreadID && tm.target == i {
			tm.target, tm.next = -1, 0
		}
	}
	if itimer.queuedOn == i {
		itimer.queuedOn = -1
	}
	updateCPUDeadlines()
}

// timerByID returns the POSIX timer with id, or nil.
func timerByID(id uint64) *cpuTimer {
	k := int64(int32(id)) // timer_t is an int
	if k < 0 || k >= maxTimers || !timers[k].used {
		return nil
	}
	return &timers[k]
}

// timerCreate is timer_create(clock, sevp, timerid) on a CPU-time
// clock. Other clocks are valid but not provided (EOPNOTSUPP).
func timerCreate(clock, sevp, idp uint64) int64 {
	tm := cpuTimer{used: true, clockOf: -1, target: -1, queuedOn: -1, notify: sigevSignal, signo: sigALRM}
	switch c := int32(clock); {
	case c == clockThreadCPU:
		tm.clockOf = current
	case c == clockProcessCPU:
		tm.process = true
	case c >= 0 && c <= maxClockID:
		return -eOPNOTSUPP
	default:
		return -eINVAL // other threads' clocks (negative ids) included
	}
	if sevp != 0 {
		if !userRange(sevp, sigeventSize, false) {
			return -eFAULT
		}
		b := userBytes(sevp, sigeventSize)
		tm.value = le.Uint64(b)
		tm.signo = uint64(le.Uint32(b[8:]))
		switch notify := int32(le.Uint32(b[12:])); notify {
		case sigevNone:
			tm.notify = sigevNone
		case sigevSignal, sigevThread:
		case sigevThreadID:
			tm.notify = sigevThreadID
			if tm.target = threadByTID(int64(int32(le.Uint32(b[16:])))); tm.target < 0 {
				return -eINVAL
			}
		default:
			return -eINVAL
		}
		if tm.notify != sigevNone && (tm.signo < 1 || tm.signo > nsig) {
			return -eINVAL
		}
	}
	if !userRange(idp, 4, true) {
		return -eFAULT
	}
	for k := range timers {
		if timers[k].used {
			continue
		}
		if sevp == 0 {
			tm.value = uint64(k) // Linux: sigev_value.sival_int is the id
		}
		timers[k] = tm
		timersTop = max(timersTop, k+1)
		le.PutUint32(userBytes(idp, 4), uint32(k))
		return 0
	}
	return -eAGAIN
}

// readTimerPair reads a struct itimerspec (unit 1: two timespecs) or a
// struct itimerval (unit 1000: two timevals) as nanoseconds: the interval,
// then the value.
func readTimerPair(p uint64, unit int64) (interval, value, errno int64) {
	if !userRange(p, 32, false) {
		return 0, 0, eFAULT
	}
	b := userBytes(p, 32)
	var ns [2]int64
	for i := range ns {
		sec, frac := int64(le.Uint64(b[16*i:])), int64(le.Uint64(b[16*i+8:]))
		if sec < 0 || frac < 0 || frac >= 1e9/unit {
			return 0, 0, eINVAL
		}
		ns[i] = min(sec, 1<<32)*1e9 + frac*unit
	}
	return ns[0], ns[1], 0
}

// writeTimerPair writes interval and the time left to next (from now) as
// a struct itimerspec or itimerval (see readTimerPair); an armed timer
// never shows zero left, which would read as disarmed.
func writeTimerPair(p uint64, unit, interval, next, now int64) {
	left := int64(0)
	if next != 0 {
		left = max(next-now, 1)
	}
	b := userBytes(p, 32)
	for i, ns := range [2]int64{interval, left} {
		frac := (ns%1e9 + unit - 1) / unit // round up: 1 ns left is 1 µs left
		sec := ns / 1e9
		if frac == 1e9/unit {
			sec, frac = sec+1, 0
		}
		le.PutUint64(b[16*i:], uint64(sec))
		le.PutUint64(b[16*i+8:], uint64(frac))
	}
}

// arm sets tm to expire after value ns of its clock (at value itself if
// abs), then every interval ns; a zero value disarms it.
func (tm *cpuTimer) arm(interval, value int64, abs bool) {
	tm.interval, tm.next = interval, 0
	if value != 0 {
		tm.next = value
		if !abs {
			tm.next += tm.read()
		}
	}
	updateCPUDeadlines()
}

func timerSettime(id, flags, newp, oldp uint64) int64 {
	tm := timerByID(id)
	if tm == nil || newp == 0 {
		return -eINVAL
	}
	interval, value, errno := readTimerPair(newp, 1)
	if errno != 0 {
		return -errno
	}
	if !tm.process && tm.clockOf < 0 {
		return -eSRCH // its thread has exited
	}
	if oldp != 0 {
		if !userRange(oldp, 32, true) {
			return -eFAULT
		}
		writeTimerPair(oldp, 1, tm.interval, tm.next, tm.read())
	}
	tm.unqueue()
	tm.arm(interval, value, flags&timerAbstime != 0)
	return 0
}

func timerGettime(id, curp uint64) int64 {
	tm := timerByID(id)
	if tm == nil {
		return -eINVAL
	}
	if !userRange(curp, 32, true) {
		return -eFAULT
	}
	writeTimerPair(curp, 1, tm.interval, tm.next, tm.read())
	return 0
}

func timerGetoverrun(id uint64) int64 {
	tm := timerByID(id)
	if tm == nil {
		return -eINVAL
	}
	return int64(tm.lastOverrun)
}

func timerDelete(id uint64) int64 {
	tm := timerByID(id)
	if tm == nil {
		return -eINVAL
	}
	tm.unqueue()
	*tm = cpuTimer{}
	updateCPUDeadlines()
	return 0
}

// setitimerProf is setitimer(which, new, old) for ITIMER_PROF, the only
// one provided (ITIMER_REAL and ITIMER_VIRTUAL: EINVAL). A null new value
// disarms, as Linux allows. A SIGPROF already queued stays pending.
func setitimerProf(which, newp, oldp uint64) int64 {
	if which != itimerProf {
		return -eINVAL
	}
	var interval, value int64
	if newp != 0 {
		var errno int64
		if interval, value, errno = readTimerPair(newp, 1000); errno != 0 {
			return -errno
		}
	}
	if oldp != 0 {
		if !userRange(oldp, 32, true) {
			return -eFAULT
		}
		writeTimerPair(oldp, 1000, itimer.interval, itimer.next, itimer.read())
	}
	itimer.arm(interval, value, false)
	return 0
}

func getitimerProf(which, curp uint64) int64 {
	if which != itimerProf {
		return -eINVAL
	}
	if !userRange(curp, 32, true) {
		return -eFAULT
	}
	writeTimerPair(curp, 1000, itimer.interval, itimer.next, itimer.read())
	return 0
}

// hasThreadTimer reports whether a timer signals thread i by its id
// (SIGEV_THREAD_ID): how Go's profiler samples a thread it set up.
func hasThreadTimer(i int32) bool {
	for k := range timersTop {
		if tm := &timers[k]; tm.used && tm.notify == sigevThreadID && tm.target == i {
			return true
		}
	}
	return false
}
