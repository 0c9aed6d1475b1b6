package kernel

import (
	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// Exception vectors (Intel SDM Vol. 3 §6.15).
const (
	excDivide     = 0
	excBreakpoint = 3
	excInvalidOp  = 6
	excDouble     = 8
	excStack      = 12
	excGP         = 13
	excPage       = 14
	excX87        = 16
	excSIMD       = 19
)

var (
	// timerDeadline is the nanotime the LAPIC one-shot is set to fire at.
	timerDeadline int64
	// sliceEnd is the nanotime at which the running thread's time slice
	// ends: timeslice after it got the CPU, or after its last slice ended.
	sliceEnd int64
)

// trap is called by trapCommon for every kernel entry, on a kernel stack,
// with interrupts off. f is the interrupted context; when trap returns,
// trapExit resumes whatever f then holds.
func trap(f *Frame) {
	if trapDepth > 1 {
		// The kernel faulted. The one fault it expects is the first touch
		// of a bss page released at boot; anything else is a kernel bug.
		if trapDepth == 2 && f.Vector == excPage {
			if addr := cpu.ReadCR2(); inLazyBSS(addr) {
				if ok, _ := faultIn(addr, true); ok {
					return
				}
			}
		}
		kernelFault(f)
	}
	yield, tick := false, false
	switch v := f.Vector; {
	case v == vectorSyscall:
		yield = doSyscall(f)
	case v == vectorTimer:
		stats.TimerInterrupts++
		timerArmed = false
		eoi()
		tick = true
	case v == vectorSpurious || (v >= picBase && v < picBase+16):
	case v < 32:
		exception(f)
	default:
		eoi()
		yield = deviceTrap(v)
	}
	now := nanotime()
	chargeCPU(now, tick)
	checkCrashTimeout(now)
	next, woke := expireTimeouts(now)
	// A tick that ends the slice or wakes a waiter preempts; one that only
	// brings a CPU-time timer's expiry leaves the thread on the CPU.
	if tick && (woke || now+timerSlack >= sliceEnd) {
		yield = true
	}
	prev := current
	schedule(f, yield)
	if current != prev || yield {
		sliceEnd = now + timeslice
	}
	deliverPending(f)
	rearmTimer(now, next)
}

// deviceTrap handles device interrupt v and reports whether the thread it
// interrupted should give up the CPU. A thread a device woke is waiting
// for I/O: it runs now, ahead of the interrupted one (as Linux's wakeup
// preemption would let it), and soon blocks again.
func deviceTrap(v uint64) (yield bool) {
	if deviceInterrupt(v) == 0 {
		return false
	}
	if current == 0 {
		stats.IdleWakeups++
	}
	return true
}

// rearmTimer keeps a one-shot pending for the nearest of: the next wait
// deadline; the end of the running thread's time slice when another
// thread waits for the CPU; the moment its CPU time reaches a CPU-time
// timer's expiry (the profiler's next SIGPROF); and the end of a crash
// report's time (checkCrashTimeout). With none of them it stops the
// timer: a thread that runs alone needs no slice, and a tick with nothing
// to do would cost a trap (and wake a halted CPU) after every burst of
// work.
func rearmTimer(now, next int64) {
	var want int64
	if current != 0 && runqHead >= 0 {
		want = sliceEnd
	}
	if next != 0 && (want == 0 || next < want) {
		want = next
	}
	if prof := cpuTimerDeadline(now); prof != 0 && (want == 0 || prof < want) {
		want = prof
	}
	if crashing && (want == 0 || crashSince+crashTimeout < want) {
		want = crashSince + crashTimeout + 1 // so that checkCrashTimeout runs
	}
	if want == 0 {
		if timerArmed {
			disarmTimer()
		}
		return
	}
	// A deadline already due (an overdue CPU-time expiry, or a slice
	// that ran out while the thread had the CPU alone) is armed at the
	// minimum; a one-shot that fires by then is kept, so that a thread
	// making system calls more often than that does not push it back.
	want = max(want, now+minTimerNs)
	if timerArmed && timerDeadline <= want && timerDeadline > now {
		return
	}
	timerDeadline = want
	armTimer(want - now)
}

// exception handles a CPU exception raised by the program: demand paging,
// or the signal Linux would send. Faults the program cannot handle end in
// a crash report.
func exception(f *Frame) {
	sf := SigFault{trapno: f.Vector, err: f.ErrorCode}
	switch f.Vector {
	case excPage:
		addr := cpu.ReadCR2()
		write := f.ErrorCode&2 != 0
		ok, accessErr := faultIn(addr, write)
		if ok {
			return
		}
		sf.signo, sf.addr, sf.code = sigSEGV, addr, segvMaperr
		if accessErr {
			sf.code = segvAccerr
		}
		// Addresses the program may own (its mmap window, and the nil
		// page) fault into Go's handler, which turns them into panics.
		// Anything else is a wild access into kernel territory.
		if addr >= 4096 && (addr < userLow || addr >= userHigh) {
			crash(f, "page fault on a kernel address", addr)
			return
		}
	case excGP, excStack:
		crash(f, "general protection fault", 0)
		return
	case excDivide:
		sf.signo, sf.code, sf.addr = sigFPE, 1, f.RIP // FPE_INTDIV
	case excX87, excSIMD:
		sf.signo, sf.code, sf.addr = sigFPE, 0, f.RIP
	case excInvalidOp:
		sf.signo, sf.code, sf.addr = sigILL, 2, f.RIP // ILL_ILLOPN
	case excBreakpoint:
		sf.signo, sf.code, sf.addr = sigTRAP, 0x80, 0
	default:
		crash(f, "unexpected exception", 0)
		return
	}
	if !deliverFault(f, sf) {
		crash(f, "fault with no handler", sf.addr)
	}
}

// panicKernel reports an impossible condition during boot and stops.
func panicKernel(what string, v uint64) {
	console.Print("kernel: fatal: ")
	console.Print(what)
	console.Print(" ")
	console.PrintHex(v)
	console.Print("\n")
	exitQEMU(3)
}
