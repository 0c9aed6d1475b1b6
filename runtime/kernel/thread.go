package kernel

import (
	"unsafe"

	"github.com/govirtio/govirtio/runtime/cpu"
)

// maxThreads bounds the threads the Go runtime may create: a handful
// (the main thread, sysmon, GC workers), plus one for each system call
// blocked at once, which with sockets is one per socket call waiting for
// the serve loop: a burst of connections makes hundreds, and Go dies when
// clone fails (200 goroutines dialing at once made 100-160). Slot 0 is
// the idle thread. A slot costs its entry here and in sockCalls (600 bytes,
// before the image's RAM check: 1024 slots put httpd past 16 MiB); its
// XSAVE area is a frame taken when the slot is first used.
const maxThreads = 512

// xsaveSize is the room for each thread's XSAVE image (x87, SSE and AVX
// need 832 bytes; CPUID leaf 0xD is checked against this at boot).
const xsaveSize = 4096

// Thread states.
const (
	threadFree = iota
	threadRunnable
	threadRunning
	threadBlocked
)

// What a blocked thread waits for.
const (
	waitNone  = iota
	waitFutex // waitAddr is the futex word
	waitSleep // only the deadline
	waitEpoll // waitFD is the epoll instance
	waitRead  // waitFD is an interrupt or event fd read in blocking mode
	// Sockets (socket.go): a caller waiting for the serve loop's answer,
	// a serve thread waiting for a call, a blocking socket call waiting
	// for readiness on waitFD before it goes again.
	waitSockCall
	waitSockServe
	waitSockReady
)

// thread is one Linux thread (one Go M). It holds the saved context while
// the thread is not running.
type thread struct {
	frame    Frame   // saved registers while not running
	state    uint32  // threadFree...
	wait     uint32  // waitNone...
	tid      int32   // Linux thread id (index + 1; idle is 0)
	waitFD   int32   // fd a waitEpoll/waitRead thread sleeps on
	fsBase   uint64  // FS base (arch_prctl, CLONE_SETTLS)
	xsave    uintptr // this thread's 64-byte aligned XSAVE area
	waitAddr uint64  // futex word for waitFutex
	deadline int64   // nanotime at which the wait times out; 0 = never
	// Epoll wait arguments, kept to fill in the events when woken.
	epEvents, epMax uint64

	sigMask     uint64 // blocked signals (bit n-1 for signal n)
	sigPending  uint64 // signals sent to this thread and not yet delivered
	altSP       uint64 // sigaltstack base
	altSize     uint64 // sigaltstack size
	altDisabled bool   // SS_DISABLE
	// inSignal counts signal frames delivered and not yet returned from;
	// sigFrame/sigXsave keep the context of the outermost for rt_sigreturn.
	inSignal uint32
	sigFault SigFault // the synchronous fault being delivered, if any
	// sigTimer and sigKernel mark the pending signals a CPU-time timer
	// queued, with SI_TIMER (timer_create) or SI_KERNEL (setitimer)
	// siginfo; see queuedSigInfo.
	sigTimer, sigKernel uint64

	cpuTime      int64 // CPU time charged to this thread (cputimer.go), ns
	cpuTimerNext int64 // nearest expiry of the timers on its clock; 0: none

	runNext int32 // run-queue link
}

var (
	threads [maxThreads]thread
	// threadsTop is one past the highest slot used since boot: the scans
	// of the table stop there.
	threadsTop int32
	// xsaveStore backs the idle thread's XSAVE area and nestedXsave
	// (aligned up to 64 inside).
	xsaveStore [3 * xsaveSize]byte
	// current is the index of the thread on the CPU.
	current int32
	// runq is a FIFO of runnable threads linked through runNext.
	runqHead, runqTail int32 = -1, -1
	// The current thread's FS base and XSAVE area, read by trapExit.
	curFS    uint64
	curXsave uintptr
)

// initThreads lays out the XSAVE areas and makes the idle thread.
func initThreads() {
	base := (uintptr(unsafe.Pointer(&xsaveStore[0])) + 63) &^ 63
	for i := range threads {
		threads[i] = thread{runNext: -1, waitFD: -1}
	}
	threadsTop = 1
	nestedXsave = base + xsaveSize
	idle := &threads[0]
	idle.xsave = base
	idle.state = threadRunnable
	idle.frame = Frame{
		RIP:    idleLoopAddr(),
		CS:     selKernelCode,
		RFLAGS: cpu.FlagIF | 2,
		RSP:    bootStackTop(),
		SS:     selKernelData,
	}
	xsaveInto(idle.xsave)
	current = 0
	curXsave = idle.xsave
	resetCPUClocks()
}

// newThread takes a free slot and returns its index, or -1 when the table
// or memory is full.
func newThread() int32 {
	for i := int32(1); i < maxThreads; i++ {
		if threads[i].state != threadFree {
			continue
		}
		t := &threads[i]
		x := t.xsave
		if x == 0 {
			p, ok := allocZeroed()
			if !ok {
				return -1
			}
			x = uintptr(physPtr(p))
		}
		*t = thread{runNext: -1, waitFD: -1, xsave: x, tid: i + 1}
		threadsTop = max(threadsTop, i+1)
		return i
	}
	return -1
}

// makeRunnable queues thread i.
func makeRunnable(i int32) {
	t := &threads[i]
	t.state = threadRunnable
	t.wait = waitNone
	t.deadline = 0
	if i == 0 {
		return // idle is never queued
	}
	t.runNext = -1
	if runqTail < 0 {
		runqHead = i
	} else {
		threads[runqTail].runNext = i
	}
	runqTail = i
}

// makeRunnableFirst queues thread i at the head of the run queue: it runs
// next, when the current thread gives up the CPU.
func makeRunnableFirst(i int32) {
	t := &threads[i]
	t.state = threadRunnable
	t.wait = waitNone
	t.deadline = 0
	if i == 0 {
		return
	}
	t.runNext = runqHead
	runqHead = i
	if runqTail < 0 {
		runqTail = i
	}
}

// wakeFirst is wake, the thread running next.
func wakeFirst(i int32, result int64) bool {
	t := &threads[i]
	if t.state != threadBlocked {
		return false
	}
	t.frame.RAX = uint64(result)
	makeRunnableFirst(i)
	return true
}

// block parks the current thread; the scheduler picks another.
func block(wait uint32, deadline int64) {
	t := &threads[current]
	t.state = threadBlocked
	t.wait = wait
	t.deadline = deadline
	if deadline != 0 && (timeoutsNext == 0 || deadline < timeoutsNext) {
		timeoutsNext = deadline
	}
}

// wake makes a blocked thread runnable with result as its system call's
// return value; it reports whether the thread was blocked.
func wake(i int32, result int64) bool {
	t := &threads[i]
	if t.state != threadBlocked {
		return false
	}
	if t.deadline != 0 && t.deadline == timeoutsNext {
		timeoutsNext = 1 // the earliest deadline goes: find the next one at the next trap
	}
	t.frame.RAX = uint64(result)
	makeRunnable(i)
	return true
}

// schedule picks the thread to run next and, when it is another one,
// switches f (the frame trap returns through) to it. The current thread
// goes to the back of the queue if it is still runnable (preempt set) or
// keeps the CPU otherwise. The idle thread never keeps it from a runnable
// thread: a thread woken while the CPU halts runs as soon as trap returns,
// not at the next timer interrupt.
func schedule(f *Frame, preempt bool) {
	cur := &threads[current]
	if cur.state == threadRunnable && current != 0 {
		// The current thread blocked in this trap and was woken again
		// before it ended (its wait timed out in expireTimeouts, or an
		// event came within its own call): wake stored the call's result
		// in its saved frame, while f still holds the system call number
		// (or the handler's return). Without this the call returned its
		// own number: epoll_pwait "returned" 281 events and Go's netpoll
		// indexed past its 128.
		f.RAX = cur.frame.RAX
	}
	if cur.state == threadRunning && !preempt && current != 0 {
		return
	}
	if cur.state == threadRunning {
		if runqHead < 0 {
			return // nobody else wants the CPU
		}
		if current != 0 {
			makeRunnable(current)
		} else {
			cur.state = threadRunnable
		}
	}
	next := runqHead
	if next >= 0 {
		runqHead = threads[next].runNext
		if runqHead < 0 {
			runqTail = -1
		}
	} else {
		next = 0 // idle
	}
	if next != current {
		cur.frame = *f
		*f = threads[next].frame
		current = next
	}
	t := &threads[current]
	t.state = threadRunning
	curFS = t.fsBase
	curXsave = t.xsave
}

// Thread lookup by Linux tid.
func threadByTID(tid int64) int32 {
	i := int32(tid - 1)
	if i < 1 || i >= maxThreads || threads[i].state == threadFree {
		return -1
	}
	return i
}

// timeslice is how long a thread runs before another runnable one gets
// the CPU.
const timeslice = 10_000_000

const (
	archSetFS = 0x1002
	archGetFS = 0x1003
)

func sysArchPrctlFS(code, addr uint64) int64 {
	t := &threads[current]
	switch code {
	case archSetFS:
		t.fsBase = addr
		curFS = addr
		return 0
	case archGetFS:
		if !userRange(addr, 8, true) {
			return -eFAULT
		}
		le.PutUint64(userBytes(addr, 8), t.fsBase)
		return 0
	}
	return -eINVAL
}

// Clone flags (include/uapi/linux/sched.h); Go always passes 0xd0f00,
// which includes the first two, plus CLONE_SETTLS.
const (
	cloneVM     = 0x100
	cloneThread = 0x10000
	cloneSettls = 0x80000
)

func sysCloneThread(f *Frame, flags, stack, tls uint64) int64 {
	if flags&(cloneVM|cloneThread) != cloneVM|cloneThread {
		return -eINVAL // only threads: there is one address space
	}
	i := newThread()
	if i < 0 {
		return -eAGAIN
	}
	parent := &threads[current]
	t := &threads[i]
	t.frame = *f
	t.frame.RAX = 0
	if stack != 0 {
		t.frame.RSP = stack
	}
	t.fsBase = parent.fsBase
	if flags&cloneSettls != 0 {
		t.fsBase = tls
	}
	t.sigMask = parent.sigMask
	t.altDisabled = true
	copy(xsaveArea(t, xsaveSize), xsaveArea(parent, xsaveSize))
	makeRunnable(i)
	return int64(t.tid)
}

// exitThread ends the current thread (SYS_exit, Go's exitThread).
func exitThread() {
	t := &threads[current]
	t.state = threadFree
	cpuTimersThreadExit(current)
}

func sysAffinity(size, mask uint64) int64 {
	if size < 8 {
		return -eINVAL
	}
	if !userRange(mask, 8, true) {
		return -eFAULT
	}
	le.PutUint64(userBytes(mask, 8), 1) // one CPU
	return 8
}
