package kernel

import (
	"encoding/binary"
	"strconv"
	"testing"
	"unsafe"

	"github.com/govirtio/govirtio/runtime/cpu"
	"github.com/govirtio/govirtio/runtime/mem"
)

// These tests run the system-call layer on the host: physical memory is an
// arena (physOffset), the program's memory is ordinary Go memory whose
// addresses fall inside the user window, and nothing touches hardware
// (calls that would print to the console or program the timer are not
// exercised here; the boot tests cover them).

type testKernel struct {
	user     []byte // the "program's" memory
	userBase uint64 // its address
	clock    int64  // nanotime as the CPU-time tests advance it (run)
}

// setupKernel resets every piece of kernel state the tests use and makes
// thread 1 current.
func setupKernel(t *testing.T) *testKernel {
	t.Helper()
	const ramSize = 8 << 20
	arena := make([]byte, ramSize+mem.PageSize)
	base := (uint64(uintptr(unsafe.Pointer(&arena[0]))) + mem.PageSize - 1) &^ (mem.PageSize - 1)
	physOffset = base
	invalidatePage = func(uintptr) {}
	t.Cleanup(func() { physOffset = 0; invalidatePage = cpu.Invlpg; _ = arena })
	frames.Init(bitmapStore[:ramSize/mem.PageSize/64])
	frames.AddRange(mem.PageSize, ramSize)
	if err := pageTable.Init(&frames, physTable); err != nil {
		t.Fatal(err)
	}
	space.Init(userLow, userHigh)
	sigactions = [nsig + 1]sigactionT{}
	runqHead, runqTail = -1, -1
	tscMult = 1 << 32 // 1 ns per TSC tick
	initThreads()
	initFiles()
	i := newThread()
	current = i
	threads[i].state = threadRunning
	threads[i].altDisabled = true

	user := make([]byte, 1<<20)
	ub := (uint64(uintptr(unsafe.Pointer(&user[0]))) + mem.PageSize - 1) &^ (mem.PageSize - 1)
	k := &testKernel{user: user, userBase: ub}
	if ub < userLow || ub+1<<19 > userHigh {
		t.Skipf("Go heap at %#x is outside the user window", ub)
	}
	if err := space.Insert(ub, 1<<19, mem.ProtRead|mem.ProtWrite); err != nil {
		t.Fatal(err)
	}
	return k
}

// at returns the user address off bytes into the test's user memory and
// the bytes there.
func (k *testKernel) at(off uint64, n int) (uint64, []byte) {
	return k.userBase + off, userBytes(k.userBase+off, n)
}

func call(nr uint64, args ...uint64) (*Frame, int64) {
	f := &Frame{RAX: nr, CS: selKernelCode, SS: selKernelData, RSP: 0x1000, RIP: 0x401000}
	regs := []*uint64{&f.RDI, &f.RSI, &f.RDX, &f.R10, &f.R8, &f.R9}
	for i, a := range args {
		*regs[i] = a
	}
	doSyscall(f)
	return f, int64(f.RAX)
}

var le64 = binary.LittleEndian

// cstring puts s, NUL-terminated, off bytes into the user memory and
// returns its address.
func (k *testKernel) cstring(off uint64, s string) uint64 {
	va, b := k.at(off, len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return va
}

func TestFutex(t *testing.T) {
	k := setupKernel(t)
	word, b := k.at(0, 4)
	le64.PutUint32(b, 5)

	if _, r := call(sysFutex, word, futexWait|futexPrivate, 4, 0); r != -eAGAIN {
		t.Errorf("wait on a changed word returned %d, want -EAGAIN", r)
	}
	waiter := current
	call(sysFutex, word, futexWait|futexPrivate, 5, 0)
	if threads[waiter].state != threadBlocked || threads[waiter].wait != waitFutex {
		t.Fatalf("wait on the current value did not block")
	}
	// Another thread wakes it.
	other := newThread()
	current = other
	threads[other].state = threadRunning
	if _, r := call(sysFutex, word, futexWake|futexPrivate, 1); r != 1 {
		t.Errorf("wake returned %d, want 1", r)
	}
	if threads[waiter].state != threadRunnable || int64(threads[waiter].frame.RAX) != 0 {
		t.Errorf("woken waiter: state %d result %d", threads[waiter].state, int64(threads[waiter].frame.RAX))
	}
	if _, r := call(sysFutex, word, futexWake|futexPrivate, 1); r != 0 {
		t.Errorf("wake with no waiter returned %d", r)
	}
}

func TestFutexTimeout(t *testing.T) {
	k := setupKernel(t)
	word, b := k.at(0, 4)
	le64.PutUint32(b, 1)
	ts, tb := k.at(64, 16)
	le64.PutUint64(tb, 0)
	le64.PutUint64(tb[8:], 1000) // 1 µs
	waiter := current
	call(sysFutex, word, futexWait, 1, ts)
	if threads[waiter].state != threadBlocked {
		t.Fatal("did not block")
	}
	expireTimeouts(threads[waiter].deadline + 1)
	if r := int64(threads[waiter].frame.RAX); threads[waiter].state != threadRunnable || r != -eTIMEDOUT {
		t.Errorf("after the deadline: state %d result %d, want runnable with -ETIMEDOUT", threads[waiter].state, r)
	}
}

func TestMmap(t *testing.T) {
	setupKernel(t)
	const mapAnonPriv = mapAnonymous | mapPrivate
	// A reservation (PROT_NONE) costs no memory and may not be touched.
	free := frames.Free()
	_, res := call(sysMmap, 0, 64<<20, 0, mapAnonPriv, ^uint64(0), 0)
	if res <= 0 || uint64(res)%mem.PageSize != 0 {
		t.Fatalf("mmap reservation returned %#x", res)
	}
	if frames.Free() != free {
		t.Errorf("a reservation used %d frames", free-frames.Free())
	}
	if userRange(uint64(res), 8, false) {
		t.Errorf("a PROT_NONE page was accessible")
	}
	// Commit part of it read/write with MAP_FIXED, touch it, release it.
	_, r := call(sysMmap, uint64(res)+4<<20, 8<<20, 3, mapAnonPriv|mapFixed, ^uint64(0), 0)
	if r != res+4<<20 {
		t.Fatalf("MAP_FIXED returned %#x, want %#x", r, res+4<<20)
	}
	if !userRange(uint64(r), 3*mem.PageSize, true) {
		t.Fatal("committed pages are not accessible")
	}
	if used := free - frames.Free(); used < 3 {
		t.Errorf("touching 3 pages used %d frames", used)
	}
	if _, r := call(sysMadvise, uint64(res)+4<<20, 8<<20, madvDontneed); r != 0 {
		t.Errorf("madvise returned %d", r)
	}
	if _, _, ok := pageTable.Lookup(uint64(res) + 4<<20); ok {
		t.Errorf("MADV_DONTNEED left the page mapped (it must read as zero next time)")
	}
	// A hint inside the window is honoured when free.
	hint := uint64(userLow + 1<<30)
	if _, r := call(sysMmap, hint, mem.PageSize, 3, mapAnonPriv, ^uint64(0), 0); uint64(r) != hint {
		t.Errorf("free hint %#x gave %#x", hint, r)
	}
	if _, r := call(sysMmap, hint, mem.PageSize, 3, mapAnonPriv|mapFixedNoReplace, ^uint64(0), 0); r != -eEXIST {
		t.Errorf("MAP_FIXED_NOREPLACE over a mapping returned %d, want -EEXIST", r)
	}
	if _, r := call(sysMunmap, uint64(res), 64<<20); r != 0 {
		t.Errorf("munmap returned %d", r)
	}
	if _, ok := space.Find(uint64(res)); ok {
		t.Errorf("munmap left the region")
	}
	if _, r := call(sysMmap, 0, 4096, 3, mapPrivate, 3, 0); r != -eNODEV {
		t.Errorf("file mapping returned %d, want -ENODEV", r)
	}
}

func TestSignalState(t *testing.T) {
	k := setupKernel(t)
	act, ab := k.at(0, 32)
	old, ob := k.at(64, 32)
	le64.PutUint64(ab, 0x4242)
	le64.PutUint64(ab[8:], saSiginfo|saOnstack)
	le64.PutUint64(ab[16:], 0x4343)
	le64.PutUint64(ab[24:], ^uint64(0))
	if _, r := call(sysRtSigaction, sigURG, act, 0, 8); r != 0 {
		t.Fatalf("sigaction returned %d", r)
	}
	if _, r := call(sysRtSigaction, sigURG, 0, old, 8); r != 0 || le64.Uint64(ob) != 0x4242 || le64.Uint64(ob[16:]) != 0x4343 {
		t.Errorf("sigaction did not read back (r=%d, handler %#x)", r, le64.Uint64(ob))
	}
	if _, r := call(sysRtSigaction, sigKILL, act, 0, 8); r != -eINVAL {
		t.Errorf("SIGKILL handler accepted (%d)", r)
	}

	set, sb := k.at(128, 8)
	oset, osb := k.at(136, 8)
	le64.PutUint64(sb, sigBit(sigURG)|sigBit(sigKILL))
	call(sysRtSigprocmask, sigBlock, set, 0, 8)
	call(sysRtSigprocmask, sigSetMsk, 0, oset, 8)
	if got := le64.Uint64(osb); got != sigBit(sigURG) {
		t.Errorf("mask after blocking URG and KILL is %#x, want only URG", got)
	}
	call(sysRtSigprocmask, sigUnblk, set, 0, 8)
	if threads[current].sigMask != 0 {
		t.Errorf("unblock left %#x", threads[current].sigMask)
	}

	ss, ssb := k.at(192, 24)
	_, r := call(sysSigaltstack, 0, ss)
	if r != 0 || le64.Uint32(ssb[8:]) != ssDisable {
		t.Errorf("initial sigaltstack flags %d (r=%d), want SS_DISABLE", le64.Uint32(ssb[8:]), r)
	}
	le64.PutUint64(ssb, k.userBase+0x10000)
	le64.PutUint32(ssb[8:], 0)
	le64.PutUint64(ssb[16:], 0x8000)
	call(sysSigaltstack, ss, 0)
	if th := threads[current]; th.altDisabled || th.altSP != k.userBase+0x10000 || th.altSize != 0x8000 {
		t.Errorf("sigaltstack not recorded: %+v", th)
	}
}

func TestKillWakesBlockedThread(t *testing.T) {
	setupKernel(t)
	target := current
	threads[target].state = threadBlocked
	threads[target].wait = waitSleep
	other := newThread()
	current = other
	threads[other].state = threadRunning
	if _, r := call(sysTgkill, 1, uint64(threads[target].tid), sigURG); r != 0 {
		t.Fatalf("tgkill returned %d", r)
	}
	if threads[target].sigPending&sigBit(sigURG) == 0 {
		t.Errorf("SIGURG not pending")
	}
	if threads[target].state != threadRunnable || int64(threads[target].frame.RAX) != -eINTR {
		t.Errorf("blocked target not woken with EINTR")
	}
	if _, r := call(sysTgkill, 1, 999, sigURG); r != -eSRCH {
		t.Errorf("tgkill of a missing thread returned %d", r)
	}
}

func TestSignalFrameRoundTrip(t *testing.T) {
	k := setupKernel(t)
	th := &threads[current]
	th.altDisabled = false
	th.altSP, th.altSize = k.userBase+0x40000, 0x10000
	sigactions[sigURG] = sigactionT{handler: 0x500000, flags: saSiginfo | saOnstack, restorer: 0x600000}
	orig := Frame{RIP: 0x401234, RSP: k.userBase + 0x20000, RAX: 7, RBX: 8, R15: 9, RFLAGS: 0x202, CS: selKernelCode, SS: selKernelData}
	f := orig
	th.sigPending = sigBit(sigURG)
	deliverPending(&f)
	if f.RIP != 0x500000 || f.RDI != sigURG || f.RDX != f.RSP+8 || f.RSI != f.RSP+8+ucSize {
		t.Fatalf("handler entry: rip %#x rdi %d rsi %#x rdx %#x rsp %#x", f.RIP, f.RDI, f.RSI, f.RDX, f.RSP)
	}
	if f.RSP < th.altSP || f.RSP >= th.altSP+th.altSize || (f.RSP+8)%16 != 0 {
		t.Errorf("handler stack %#x not on the alternate stack or misaligned", f.RSP)
	}
	if th.sigMask&sigBit(sigURG) == 0 {
		t.Errorf("signal not blocked during its handler")
	}
	frame := userBytes(f.RSP, frameBytes)
	if le64.Uint64(frame) != 0x600000 {
		t.Errorf("return address %#x, want the restorer", le64.Uint64(frame))
	}
	mc := frame[8+ucMcontext:]
	if rip := le64.Uint64(mc[16*8:]); rip != orig.RIP {
		t.Errorf("saved rip %#x", rip)
	}
	// The handler (Go's sigtramp) rewrites the saved RIP, then returns
	// through the restorer: RET pops the return address, then
	// rt_sigreturn.
	le64.PutUint64(mc[16*8:], 0x402000)
	ret := f
	ret.RSP += 8
	ret.RAX = sysRtSigreturn
	doSyscall(&ret)
	if ret.RIP != 0x402000 || ret.RSP != orig.RSP || ret.RAX != 7 || ret.RBX != 8 || ret.R15 != 9 || ret.RFLAGS&(1<<9) == 0 {
		t.Errorf("after rt_sigreturn: %+v", ret)
	}
	if th.sigMask != 0 {
		t.Errorf("mask %#x not restored", th.sigMask)
	}
}

func TestEpollEventfd(t *testing.T) {
	k := setupKernel(t)
	_, efd := call(sysEventfd2, 0, efdNonblock)
	_, ep := call(sysEpollCreate1, 0)
	if efd < 3 || ep < 3 {
		t.Fatalf("eventfd %d, epoll %d", efd, ep)
	}
	ev, evb := k.at(0, 12)
	le64.PutUint32(evb, epollIn|epollET)
	le64.PutUint64(evb[4:], 0xabc)
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlAdd, uint64(efd), ev); r != 0 {
		t.Fatalf("epoll_ctl add returned %d", r)
	}
	out, outb := k.at(256, 12*4)
	if _, r := call(sysEpollPwait, uint64(ep), out, 4, 0); r != 0 {
		t.Errorf("nothing written yet, but epoll reported %d events", r)
	}
	buf, bb := k.at(512, 8)
	if _, r := call(sysRead, uint64(efd), buf, 8); r != -eAGAIN {
		t.Errorf("read of an empty non-blocking eventfd returned %d", r)
	}
	// A thread blocks in epoll_pwait; a write from another wakes it.
	waiter := current
	call(sysEpollPwait, uint64(ep), out, 4, ^uint64(0))
	if threads[waiter].state != threadBlocked {
		t.Fatal("epoll_pwait with no events and no timeout did not block")
	}
	writer := newThread()
	current = writer
	threads[writer].state = threadRunning
	le64.PutUint64(bb, 3)
	if _, r := call(sysWrite, uint64(efd), buf, 8); r != 8 {
		t.Fatalf("eventfd write returned %d", r)
	}
	if threads[waiter].state != threadRunnable || threads[waiter].frame.RAX != 1 {
		t.Fatalf("waiter not woken with 1 event (state %d, rax %d)", threads[waiter].state, threads[waiter].frame.RAX)
	}
	if le64.Uint32(outb) != epollIn || le64.Uint64(outb[4:]) != 0xabc {
		t.Errorf("event %#x data %#x", le64.Uint32(outb), le64.Uint64(outb[4:]))
	}
	// Edge-triggered: no second report until the next write.
	if _, r := call(sysEpollPwait, uint64(ep), out, 4, 0); r != 0 {
		t.Errorf("edge-triggered fd reported again without a new edge")
	}
	if _, r := call(sysRead, uint64(efd), buf, 8); r != 8 || le64.Uint64(bb) != 3 {
		t.Errorf("eventfd read returned %d, value %d", r, le64.Uint64(bb))
	}
	if _, r := call(sysClose, uint64(efd)); r != 0 {
		t.Errorf("close returned %d", r)
	}
	if _, r := call(sysRead, uint64(efd), buf, 8); r != -eBADF {
		t.Errorf("read after close returned %d", r)
	}
}

func TestCloneAndThreadCalls(t *testing.T) {
	k := setupKernel(t)
	parent := current
	f, tid := call(sysClone, 0xd0f00|cloneSettls, k.userBase+0x8000, 0, 0, 0x7777)
	if tid <= 0 {
		t.Fatalf("clone returned %d", tid)
	}
	child := threadByTID(tid)
	c := &threads[child]
	if c.state != threadRunnable || c.frame.RAX != 0 || c.frame.RSP != k.userBase+0x8000 || c.fsBase != 0x7777 || c.frame.RIP != f.RIP {
		t.Errorf("child: state %d rax %d rsp %#x fs %#x", c.state, c.frame.RAX, c.frame.RSP, c.fsBase)
	}
	if _, r := call(sysClone, 0x11, 0, 0, 0, 0); r != -eINVAL {
		t.Errorf("fork-style clone returned %d, want -EINVAL", r)
	}
	if _, r := call(sysGettid); r != int64(threads[parent].tid) {
		t.Errorf("gettid %d", r)
	}
	if _, r := call(sysArchPrctl, archSetFS, 0x1234); r != 0 || threads[parent].fsBase != 0x1234 || curFS != 0x1234 {
		t.Errorf("arch_prctl(SET_FS) did not take effect")
	}
	mask, mb := k.at(0, 8)
	if _, r := call(sysSchedGetaff, 0, 8, mask); r != 8 || le64.Uint64(mb) != 1 {
		t.Errorf("sched_getaffinity: %d, mask %#x", r, le64.Uint64(mb))
	}
	if _, r := call(sysPrctl, 0x53564d41); r != -eINVAL {
		t.Errorf("prctl returned %d, want -EINVAL (Go retries on ENOSYS)", r)
	}
	reported[400] = true // already named: nothing to print
	if _, r := call(400); r != -eNOSYS {
		t.Errorf("unknown call returned %d", r)
	}
}

func TestClock(t *testing.T) {
	k := setupKernel(t)
	wallBase = 1_700_000_000e9
	ts, b := k.at(0, 16)
	call(sysClockGettime, 1, ts)
	m1 := int64(le64.Uint64(b))*1e9 + int64(le64.Uint64(b[8:]))
	call(sysClockGettime, 1, ts)
	m2 := int64(le64.Uint64(b))*1e9 + int64(le64.Uint64(b[8:]))
	if m2 < m1 {
		t.Errorf("monotonic clock went back: %d then %d", m1, m2)
	}
	call(sysClockGettime, clockRealtime, ts)
	if sec := le64.Uint64(b); sec < 1_700_000_000 {
		t.Errorf("realtime %d s, want past the wall base", sec)
	}
	if _, r := call(sysClockGettime, 99, ts); r != -eINVAL {
		t.Errorf("bad clock id returned %d", r)
	}
	if _, r := call(sysClockGettime, 1, 8); r != -eFAULT {
		t.Errorf("bad pointer returned %d", r)
	}
}

func TestEnvWords(t *testing.T) {
	for w, want := range map[string]bool{
		"GODEBUG=gctrace=1": true, "GOMAXPROCS=2": true, "A_1=x": true,
		"ip=10.0.2.15/24": false, "=x": false, "1A=x": false, "FOO": false, "Foo=1": false,
	} {
		if got := isEnvWord([]byte(w)); got != want {
			t.Errorf("isEnvWord(%q) = %v, want %v", w, got, want)
		}
	}
}

func TestDaysFromCivil(t *testing.T) {
	for _, tc := range []struct{ y, m, d, want int64 }{
		{1970, 1, 1, 0}, {2000, 3, 1, 11017}, {2026, 11, 26, 20783}, {1969, 12, 31, -1},
	} {
		if got := daysFromCivil(tc.y, tc.m, tc.d); got != tc.want {
			t.Errorf("daysFromCivil(%d-%d-%d) = %d, want %d", tc.y, tc.m, tc.d, got, tc.want)
		}
	}
}

// blockReadingIRQ opens /dev/irq/vector and makes the current thread block
// reading it; it returns the thread and the fd.
func (k *testKernel) blockReadingIRQ(t *testing.T, vector int) (int32, int64) {
	t.Helper()
	_, fd := call(sysOpen, k.cstring(0, "/dev/irq/"+strconv.Itoa(vector)), 0)
	if fd < 0 {
		t.Fatalf("open /dev/irq/%d returned %d", vector, fd)
	}
	reader := current
	buf, _ := k.at(128, 8)
	call(sysRead, uint64(fd), buf, 8)
	if threads[reader].state != threadBlocked {
		t.Fatal("blocking read of an interrupt file did not block")
	}
	return reader, fd
}

// runNewThread makes a new thread the running one and returns it.
func (k *testKernel) runNewThread() int32 {
	i := newThread()
	current = i
	threads[i].state = threadRunning
	return i
}

// An interrupt that wakes a thread while the CPU idles hands the CPU to
// that thread when the trap returns: no timer tick stands in between.
func TestInterruptOnIdleCPURunsWokenThreadAtOnce(t *testing.T) {
	k := setupKernel(t)
	stats = Stats{}
	irq := vectorMSIFirst + 3
	_, fd := call(sysOpen, k.cstring(0, "/dev/irq/"+strconv.Itoa(irq)), oNonblock)
	_, ep := call(sysEpollCreate1, 0)
	ev, evb := k.at(64, 12)
	le64.PutUint32(evb, epollIn|epollET)
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlAdd, uint64(fd), ev); r != 0 {
		t.Fatalf("epoll_ctl add returned %d", r)
	}
	out, _ := k.at(256, 12*4)
	call(sysEpollPwait, uint64(ep), out, 4, 0) // consume the initial edge
	waiter := current
	call(sysEpollPwait, uint64(ep), out, 4, ^uint64(0))
	if threads[waiter].state != threadBlocked {
		t.Fatal("epoll_pwait with nothing ready did not block")
	}
	// Nothing else to run: the idle thread takes the CPU.
	f := &Frame{RIP: 0x401000}
	schedule(f, false)
	if current != 0 {
		t.Fatalf("thread %d runs, want the idle thread", current)
	}
	yield := deviceTrap(uint64(irq))
	schedule(f, yield)
	if current != waiter || threads[waiter].state != threadRunning {
		t.Fatalf("after the interrupt thread %d runs (waiter %d state %d), want the waiter", current, waiter, threads[waiter].state)
	}
	if f.RAX != 1 {
		t.Errorf("epoll_pwait returned %d events, want 1", int64(f.RAX))
	}
	if stats.DeviceInterrupts != 1 || stats.InterruptWakes != 1 || stats.IdleWakeups != 1 {
		t.Errorf("stats %+v, want one interrupt, one interrupt wake, one idle wakeup", stats)
	}
}

// A thread an interrupt wakes preempts the running thread, which goes to
// the back of the run queue; an interrupt nobody waits for preempts
// nothing.
func TestInterruptWakePreemptsRunningThread(t *testing.T) {
	k := setupKernel(t)
	stats = Stats{}
	irq := vectorMSIFirst + 4
	waiter, _ := k.blockReadingIRQ(t, irq)
	busy := k.runNewThread()
	f := &Frame{RIP: 0x401000}
	if deviceTrap(uint64(irq + 1)) {
		t.Error("an interrupt on a vector nobody opened asked to preempt")
	}
	schedule(f, deviceTrap(uint64(irq)))
	if current != waiter || f.RAX != 8 {
		t.Fatalf("thread %d runs (read returned %d), want the woken reader %d", current, int64(f.RAX), waiter)
	}
	if threads[busy].state != threadRunnable || runqHead != busy {
		t.Errorf("the preempted thread is not queued to run next")
	}
	if stats.IdleWakeups != 0 || stats.InterruptWakes != 1 || stats.DeviceInterrupts != 2 {
		t.Errorf("stats %+v", stats)
	}
}

// The idle thread never keeps the CPU from a runnable thread, whatever
// made it runnable.
func TestIdleGivesWayWithoutPreemption(t *testing.T) {
	setupKernel(t)
	th := current
	threads[th].state = threadBlocked
	f := &Frame{RIP: 0x401000}
	schedule(f, false)
	if current != 0 {
		t.Fatalf("thread %d runs, want the idle thread", current)
	}
	wake(th, 42)
	schedule(f, false)
	if current != th || f.RAX != 42 {
		t.Errorf("thread %d runs (rax %d), want thread %d with 42", current, f.RAX, th)
	}
}

// Closing an interrupt file wakes a thread blocked reading it, with EBADF.
func TestCloseWakesBlockedReaderOfInterruptFile(t *testing.T) {
	k := setupKernel(t)
	reader, fd := k.blockReadingIRQ(t, vectorMSIFirst+5)
	k.runNewThread()
	if _, r := call(sysClose, uint64(fd)); r != 0 {
		t.Fatalf("close returned %d", r)
	}
	if threads[reader].state != threadRunnable || int64(threads[reader].frame.RAX) != -eBADF {
		t.Errorf("reader state %d rax %d, want runnable with EBADF", threads[reader].state, int64(threads[reader].frame.RAX))
	}
}
