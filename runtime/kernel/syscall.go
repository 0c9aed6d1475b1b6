package kernel

import "github.com/govirtio/govirtio/runtime/console"

// Linux x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	sysRead            = 0
	sysWrite           = 1
	sysOpen            = 2
	sysClose           = 3
	sysFstat           = 5
	sysMmap            = 9
	sysMprotect        = 10
	sysMunmap          = 11
	sysRtSigaction     = 13
	sysRtSigprocmask   = 14
	sysRtSigreturn     = 15
	sysIoctl           = 16
	sysPread64         = 17
	sysSchedYield      = 24
	sysMadvise         = 28
	sysNanosleep       = 35
	sysGetitimer       = 36
	sysSetitimer       = 38
	sysGetpid          = 39
	sysClone           = 56
	sysExit            = 60
	sysUname           = 63
	sysFcntl           = 72
	sysReadlink        = 89
	sysGettimeofday    = 96
	sysGetrlimit       = 97
	sysGetuid          = 102
	sysGetgid          = 104
	sysGeteuid         = 107
	sysGetegid         = 108
	sysGetppid         = 110
	sysSigaltstack     = 131
	sysPrctl           = 157
	sysArchPrctl       = 158
	sysGettid          = 186
	sysTkill           = 200
	sysTime            = 201
	sysFutex           = 202
	sysSchedGetaff     = 204
	sysEpollCreate     = 213
	sysTimerCreate     = 222
	sysTimerSettime    = 223
	sysTimerGettime    = 224
	sysTimerGetoverrun = 225
	sysTimerDelete     = 226
	sysClockGettime    = 228
	sysClockGetres     = 229
	sysClockNanosleep  = 230
	sysExitGroup       = 231
	sysEpollWait       = 232
	sysEpollCtl        = 233
	sysTgkill          = 234
	sysOpenat          = 257
	sysNewfstatat      = 262
	sysReadlinkat      = 267
	sysEpollPwait      = 281
	sysEventfd2        = 290
	sysEpollCreate1    = 291
	sysPipe2           = 293
	sysPrlimit64       = 302
	sysGetrandom       = 318
	sysRseq            = 334
	sysEpollPwait2     = 441
	maxSyscallReported = 512
)

// reported remembers which unknown system calls were named on the console.
var reported [maxSyscallReported]bool

// doSyscall runs the system call in f and stores its result in f.RAX unless
// the thread blocked (the result arrives with wake) or the call rewrote
// the whole context (rt_sigreturn). It reports whether the thread asked to
// give up the CPU.
func doSyscall(f *Frame) (yield bool) {
	nr := f.RAX
	stats.Syscalls++
	a0, a1, a2, a3, a4 := f.RDI, f.RSI, f.RDX, f.R10, f.R8
	var r int64
	switch nr {
	case sysRead:
		r = sysReadFD(int64(a0), a1, a2)
	case sysWrite:
		r = sysWriteFD(int64(a0), a1, a2)
	case sysClose:
		r = closeFD(int64(a0))
	case sysIoctl:
		r = -eNOTTY
	case sysFcntl:
		r = sysFcntlFD(int64(a0), a1, a2)
	case sysMmap:
		r = sysMmapAnon(a0, a1, a2, a3, int64(a4))
	case sysMunmap:
		r = sysMunmapRange(a0, a1)
	case sysMadvise:
		r = sysMadviseRange(a0, a1, a2)
	case sysMprotect:
		r = sysMprotectRange(a0, a1, a2)
	case sysRtSigaction:
		r = sysSigaction(a0, a1, a2, a3)
	case sysRtSigprocmask:
		r = sysSigprocmask(a0, a1, a2, a3)
	case sysRtSigreturn:
		if sysSigreturn(f) {
			return false // f is the restored context, RAX included
		}
		r = -eFAULT
	case sysSigaltstack:
		r = sysSigaltstackSet(f, a0, a1)
	case sysTgkill:
		r = sysKill(int64(a1), a2)
	case sysTkill:
		r = sysKill(int64(a0), a1)
	case sysSchedYield:
		r = 0
		yield = true
	case sysNanosleep:
		r = sysSleep(a0)
	case sysClockNanosleep:
		r = sysClockSleep(a0, a1, a2)
	case sysGetpid, sysGetppid:
		r = 1
	case sysGettid:
		r = int64(threads[current].tid)
	case sysGetuid, sysGetgid, sysGeteuid, sysGetegid:
		r = 0
	case sysClone:
		r = sysCloneThread(f, a0, a1, a4)
	case sysExit:
		exitThread()
		return true
	case sysExitGroup:
		exitQEMU(uint8(a0))
	case sysArchPrctl:
		r = sysArchPrctlFS(a0, a1)
	case sysPrctl:
		r = -eINVAL // ENOSYS would make Go retry PR_SET_VMA on every mmap
	case sysFutex:
		r = sysFutexOp(f, a0, a1, a2, a3)
	case sysSchedGetaff:
		r = sysAffinity(a1, a2)
	case sysClockGettime:
		r = sysClock(a0, a1)
	case sysClockGetres:
		r = sysClockRes(a1)
	case sysTimerCreate:
		r = timerCreate(a0, a1, a2)
	case sysTimerSettime:
		r = timerSettime(a0, a1, a2, a3)
	case sysTimerGettime:
		r = timerGettime(a0, a1)
	case sysTimerGetoverrun:
		r = timerGetoverrun(a0)
	case sysTimerDelete:
		r = timerDelete(a0)
	case sysSetitimer:
		r = setitimerProf(a0, a1, a2)
	case sysGetitimer:
		r = getitimerProf(a0, a1)
	case sysGettimeofday:
		r = sysTimeOfDay(a0)
	case sysTime:
		r = sysTimeSeconds(a0)
	case sysGetrandom:
		r = sysRandom(a0, a1)
	case sysUname:
		r = sysUnameFill(a0)
	case sysGetrlimit:
		r = sysRlimit(a0, 0, a1)
	case sysPrlimit64:
		r = sysRlimit(a1, a2, a3)
	case sysEpollCreate, sysEpollCreate1:
		r = epollCreate()
	case sysEpollCtl:
		r = epollCtl(int64(a0), a1, int64(a2), a3)
	case sysEpollWait:
		r = epollWait(int64(a0), a1, int64(a2), int64(int32(a3)))
	case sysEpollPwait:
		r = epollWait(int64(a0), a1, int64(a2), int64(int32(a3)))
	case sysEventfd2:
		r = eventfdCreate(a0, a1)
	case sysSocket:
		r = sysSocketCreate(a0, a1, a2)
	case sysSocketpair:
		r = -eOPNOTSUPP // no AF_UNIX
	case sysGetsockname, sysGetpeername:
		r = sysSockName(int64(a0), a1, a2, nr == sysGetpeername)
	case sysBind, sysConnect, sysListen, sysAccept, sysAccept4,
		sysRecvfrom, sysSendto, sysRecvmsg, sysSendmsg, sysShutdown, sysSetsockopt, sysGetsockopt:
		r = sysSockCall(nr, [6]uint64{a0, a1, a2, a3, a4, f.R9})
	case sysReadv:
		r = sysReadvFD(int64(a0), a1, a2)
	case sysWritev:
		r = sysWritevFD(int64(a0), a1, a2)
	case SysCrashReport:
		r = crashRecordCopy(a0, a1)
	case SysSelfIPI:
		r = sysSelfIPI(a0)
	case SysMapDevice:
		r = sysMapDeviceRange(a0, a1)
	case SysAPICID:
		r = int64(lapicIDValue())
	case SysAllocDMA:
		r = sysAllocDMA(a0, a1)
	case SysVirtToPhys:
		r = sysVirtToPhys(a0)
	case SysKernelStats:
		r = sysKernelStats(a0, a1)
	case SysACPITable:
		r = sysACPITable(a0, a1, a2, a3)
	case SysSocketProvide:
		r = sysSocketProvide(a0)
	case SysSocketServe:
		r = sysSocketServe(a0, int64(a1), a2, a3, a4)
	case SysSocketReady:
		r = sysSocketReady(a0, a1)
	case SysSocketCloseQueue:
		r = sysSocketCloseQueue()
	case sysRseq, sysPipe2:
		// Without pipes Go copies between two sockets itself instead of
		// splicing (io.Copy from one TCPConn to another): no message.
		r = -eNOSYS
	default:
		if v, ok := fsSyscall(nr, a0, a1, a2, a3); ok {
			r = v
			break
		}
		if nr < maxSyscallReported && !reported[nr] {
			reported[nr] = true
			console.Print("kernel: unimplemented system call ")
			console.PrintDec(nr)
			console.Print("\n")
		}
		r = -eNOSYS
	}
	if threads[current].state == threadBlocked {
		return false
	}
	f.RAX = uint64(r)
	return yield
}
