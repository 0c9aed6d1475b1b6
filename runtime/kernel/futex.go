package kernel

// Futex operations (include/uapi/linux/futex.h).
const (
	futexWait        = 0
	futexWake        = 1
	futexPrivate     = 128
	futexClockRT     = 256
	futexCmdMask     = ^uint64(futexPrivate | futexClockRT)
	futexWakeAllHint = 1 << 30
)

// sysFutexOp implements FUTEX_WAIT and FUTEX_WAKE (private or not: there
// is one process). A waiter blocks until woken, its timeout (a relative
// timespec) passes, or a signal arrives.
func sysFutexOp(f *Frame, addr, op, val, timeout uint64) int64 {
	if addr%4 != 0 {
		return -eINVAL
	}
	switch op & futexCmdMask {
	case futexWait:
		if !userRange(addr, 4, false) {
			return -eFAULT
		}
		if le.Uint32(userBytes(addr, 4)) != uint32(val) {
			return -eAGAIN
		}
		var deadline int64
		if timeout != 0 {
			d, ok := readTimespec(timeout)
			if !ok {
				return -eFAULT
			}
			deadline = nanotime() + d
			if d == 0 {
				return -eTIMEDOUT
			}
		}
		t := &threads[current]
		t.waitAddr = addr
		block(waitFutex, deadline)
		return 0
	case futexWake:
		n := int64(0)
		for i := int32(1); i < threadsTop && n < int64(int32(val)); i++ {
			t := &threads[i]
			if t.state == threadBlocked && t.wait == waitFutex && t.waitAddr == addr {
				wake(i, 0)
				n++
			}
		}
		return n
	}
	return -eNOSYS
}

// expireTimeouts wakes the threads whose wait deadline has passed, with
// the result their call gives on timeout, and returns the nearest
// deadline still pending (0 if none) and whether it woke any.
func expireTimeouts(now int64) (next int64, woke bool) {
	if timeoutsNext == 0 || now < timeoutsNext {
		return timeoutsNext, false
	}
	for i := int32(1); i < threadsTop; i++ {
		t := &threads[i]
		if t.state != threadBlocked || t.deadline == 0 {
			continue
		}
		if t.deadline <= now {
			switch t.wait {
			case waitFutex:
				wake(i, -eTIMEDOUT)
			default:
				wake(i, 0) // sleep done; epoll wait with no events
			}
			woke = true
			continue
		}
		if next == 0 || t.deadline < next {
			next = t.deadline
		}
	}
	timeoutsNext = next
	return next, woke
}

// timeoutsNext is the earliest deadline of the blocked threads (0: none),
// so that the traps before it skip expireTimeouts' walk of the thread
// table: that walk was half of what a system call cost. block lowers it;
// wake, when the thread it wakes had that deadline, sets it to 1 (always
// due), so that the next trap walks the table and finds the next one.
var timeoutsNext int64
