package kernel

import "syscall"

// Stats are the kernel's event counters. They only grow; a program reads
// them with ReadStats (httpd publishes them under /debug/vars).
type Stats struct {
	// DeviceInterrupts counts interrupts from devices (MSI, MSI-X, INTx).
	DeviceInterrupts uint64
	// InterruptWakes counts threads a device interrupt made runnable: the
	// wakes that deliver packets without waiting for a timer.
	InterruptWakes uint64
	// IdleWakeups counts device interrupts that found the CPU halted and
	// handed it straight to the thread they woke.
	IdleWakeups uint64
	// TimerInterrupts counts LAPIC timer interrupts (time slices and
	// deadlines).
	TimerInterrupts uint64
	// Syscalls counts system calls.
	Syscalls uint64
	// CPUTimerSignals counts the signals CPU-time timers queued: the
	// profiler's SIGPROF ticks (timer_create and setitimer), without the
	// expiries that found their last signal still pending.
	CPUTimerSignals uint64
	// IdleTime is the time in ns the idle thread had the CPU, up to
	// Uptime. The kernel's work in the traps that hand the CPU to the idle
	// thread and take it back counts on one side or the other of the
	// accounting point (chargeCPU): the end of the trap that switched to
	// the idle thread and the start of the device interrupt that woke it,
	// up to that trap's accounting point, count as idle.
	IdleTime uint64
	// Uptime is the nanotime (ns since the TSC was calibrated at boot) up
	// to which CPU time has been charged, the point IdleTime is counted
	// to: Uptime - IdleTime is exactly the time the CPU was busy, running
	// threads or the kernel, since boot.
	Uptime uint64
	// MemoryFree is the RAM in bytes no one holds: neither the image, nor
	// the kernel, nor the program's committed pages. MemoryTotal is the
	// top of RAM in bytes.
	MemoryFree, MemoryTotal uint64
	// SocketCalls counts socket calls handed to the serve loop.
	SocketCalls uint64
	// SocketStaleAnswers counts answers from the serve loop that found
	// no caller waiting (a bug if it ever grows).
	SocketStaleAnswers uint64
	// SocketStaleEvents counts readiness reports dropped: for a socket
	// already closed, or older than the last one applied.
	SocketStaleEvents uint64
	// SocketNoProvider counts socket() calls refused (EAFNOSUPPORT)
	// because no network stack serves sockets.
	SocketNoProvider uint64
	// SocketServeIdle counts the serve loop's waits for a call that did
	// not follow an answer: a serve thread that may hold the P while it
	// waits (see doc.go, "Sockets").
	SocketServeIdle uint64
	// SocketCallsDeferred counts the non-blocking socket calls refused
	// with EAGAIN because the serve loop was behind (socket.go).
	SocketCallsDeferred uint64
	// SocketCallsWouldBlock counts the non-blocking socket calls the
	// kernel answered EAGAIN alone, from the readiness it holds.
	SocketCallsWouldBlock uint64
}

// stats is written by the kernel only, with interrupts off.
var stats Stats

// statsWords is how many counters SysKernelStats copies out.
const statsWords = 17

// words lists the counters in the order SysKernelStats copies them.
func (s *Stats) words() [statsWords]*uint64 {
	return [statsWords]*uint64{&s.DeviceInterrupts, &s.InterruptWakes, &s.IdleWakeups, &s.TimerInterrupts, &s.Syscalls, &s.CPUTimerSignals,
		&s.IdleTime, &s.Uptime, &s.MemoryFree, &s.MemoryTotal,
		&s.SocketCalls, &s.SocketStaleAnswers, &s.SocketStaleEvents, &s.SocketNoProvider, &s.SocketServeIdle, &s.SocketCallsDeferred,
		&s.SocketCallsWouldBlock}
}

// ReadStats returns a snapshot of the kernel's counters. It is ordinary Go
// code, called by the program.
func ReadStats() (Stats, error) {
	var b [statsWords * 8]byte
	if _, _, e := syscall.RawSyscall(SysKernelStats, uintptr(unsafePointer(&b[0])), uintptr(len(b)), 0); e != 0 {
		return Stats{}, e
	}
	var s Stats
	for i, w := range s.words() {
		*w = le.Uint64(b[i*8:])
	}
	return s, nil
}

// sysKernelStats copies the counters to the program's buffer at buf. It
// charges the CPU time up to now first, so that Uptime and IdleTime are as
// of the call.
func sysKernelStats(buf, size uint64) int64 {
	chargeCPU(nanotime(), false)
	stats.Uptime = uint64(accountedAt)
	stats.MemoryFree = uint64(frames.Free()) * 4096
	stats.MemoryTotal = ramTop
	if size < statsWords*8 {
		return -eINVAL
	}
	if !userRange(buf, statsWords*8, true) {
		return -eFAULT
	}
	b := userBytes(buf, statsWords*8)
	for i, w := range stats.words() {
		le.PutUint64(b[i*8:], *w)
	}
	return 0
}
