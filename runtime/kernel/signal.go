package kernel

// Signals, as the Go runtime uses them: handlers installed with
// SA_SIGINFO|SA_ONSTACK|SA_RESTORER, run on each thread's sigaltstack in
// Linux's rt_sigframe layout (arch/x86/include/asm/sigframe.h,
// uapi/asm/sigcontext.h), returning through rt_sigreturn. Faults become
// SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP for the faulting thread; tgkill
// sends SIGURG for asynchronous preemption; CPU-time timers send SIGPROF
// for the profiler (cputimer.go).

const (
	nsig      = 64
	sigILL    = 4
	sigTRAP   = 5
	sigALRM   = 14
	sigBUS    = 7
	sigFPE    = 8
	sigKILL   = 9
	sigSEGV   = 11
	sigSTOP   = 19
	sigURG    = 23
	sigPROF   = 27
	sigDfl    = 0
	sigIgn    = 1
	saSiginfo = 0x4
	saOnstack = 0x08000000
	saNodefer = 0x40000000
	ssOnstack = 1
	ssDisable = 2
	sigBlock  = 0
	sigUnblk  = 1
	sigSetMsk = 2

	segvMaperr = 1
	segvAccerr = 2
	siKernel   = 0x80       // SI_KERNEL: fault-like, and setitimer's signals
	siTimer    = 0xfffffffe // SI_TIMER (-2): a POSIX timer's expiry
	siTkill    = 0xfffffffa // SI_TKILL (-6): tgkill, tkill

	// Frame layout.
	ucMcontext  = 40  // offset of uc_mcontext in struct ucontext
	ucSigmask   = 296 // 40 + sizeof(struct sigcontext)
	ucSize      = 304
	siginfoSize = 128
	frameBytes  = 8 + ucSize + siginfoSize // pretcode, ucontext, siginfo
	redZone     = 128
)

// sigactionT is struct sigaction as the kernel ABI has it.
type sigactionT struct {
	handler, flags, restorer, mask uint64
}

// SigFault describes the siginfo of a signal being delivered: a
// synchronous fault (addr, trapno, err), or a timer's expiry (SI_TIMER:
// timerID, overrun, value).
type SigFault struct {
	signo, code uint64
	addr        uint64
	trapno, err uint64

	timerID, overrun int32
	value            uint64
}

var sigactions [nsig + 1]sigactionT

func sigBit(sig uint64) uint64 { return 1 << (sig - 1) }

func sysSigaction(sig, act, oact, size uint64) int64 {
	if sig < 1 || sig > nsig || size != 8 {
		return -eINVAL
	}
	if oact != 0 {
		if !userRange(oact, 32, true) {
			return -eFAULT
		}
		b := userBytes(oact, 32)
		a := sigactions[sig]
		le.PutUint64(b, a.handler)
		le.PutUint64(b[8:], a.flags)
		le.PutUint64(b[16:], a.restorer)
		le.PutUint64(b[24:], a.mask)
	}
	if act != 0 {
		if sig == sigKILL || sig == sigSTOP {
			return -eINVAL
		}
		if !userRange(act, 32, false) {
			return -eFAULT
		}
		b := userBytes(act, 32)
		sigactions[sig] = sigactionT{le.Uint64(b), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}
	}
	return 0
}

func sysSigprocmask(how, set, oset, size uint64) int64 {
	if size != 8 {
		return -eINVAL
	}
	t := &threads[current]
	if oset != 0 {
		if !userRange(oset, 8, true) {
			return -eFAULT
		}
		le.PutUint64(userBytes(oset, 8), t.sigMask)
	}
	if set != 0 {
		if !userRange(set, 8, false) {
			return -eFAULT
		}
		m := le.Uint64(userBytes(set, 8)) &^ (sigBit(sigKILL) | sigBit(sigSTOP))
		switch how {
		case sigBlock:
			t.sigMask |= m
		case sigUnblk:
			t.sigMask &^= m
		case sigSetMsk:
			t.sigMask = m
		default:
			return -eINVAL
		}
	}
	return 0
}

func onAltStack(t *thread, sp uint64) bool {
	return !t.altDisabled && t.altSize > 0 && sp > t.altSP && sp <= t.altSP+t.altSize
}

func sysSigaltstackSet(f *Frame, ss, old uint64) int64 {
	t := &threads[current]
	if old != 0 {
		if !userRange(old, 24, true) {
			return -eFAULT
		}
		b := userBytes(old, 24)
		flags := uint32(0)
		if t.altDisabled || t.altSize == 0 {
			flags = ssDisable
		} else if onAltStack(t, f.RSP) {
			flags = ssOnstack
		}
		le.PutUint64(b, t.altSP)
		le.PutUint32(b[8:], flags)
		le.PutUint32(b[12:], 0)
		le.PutUint64(b[16:], t.altSize)
	}
	if ss != 0 {
		if !userRange(ss, 24, false) {
			return -eFAULT
		}
		if onAltStack(t, f.RSP) {
			return -ePERM
		}
		b := userBytes(ss, 24)
		flags := le.Uint32(b[8:])
		if flags&ssDisable != 0 {
			t.altDisabled = true
			t.altSP, t.altSize = 0, 0
		} else {
			t.altDisabled = false
			t.altSP, t.altSize = le.Uint64(b), le.Uint64(b[16:])
		}
	}
	return 0
}

// sysKill sends sig to thread tid (tgkill, tkill). A thread blocked in a
// wait is woken with EINTR so that it takes the signal promptly.
func sysKill(tid int64, sig uint64) int64 {
	if sig > nsig {
		return -eINVAL
	}
	i := threadByTID(tid)
	if i < 0 {
		return -eSRCH
	}
	if sig == 0 {
		return 0
	}
	t := &threads[i]
	t.sigPending |= sigBit(sig)
	// A socket call handed to the serve loop is not interrupted: its
	// answer would be lost (and a blocking one is restarted, as Linux
	// does for Go's SA_RESTART handlers); the signal waits for it.
	if t.state == threadBlocked && t.sigMask&sigBit(sig) == 0 && t.wait != waitSockCall && t.wait != waitSockReady {
		wake(i, -eINTR)
	}
	return 0
}

// deliverPending runs on the way back to the current thread: the lowest
// pending, unblocked signal gets a handler frame built on f.
func deliverPending(f *Frame) {
	t := &threads[current]
	if current == 0 {
		return
	}
	ready := t.sigPending &^ t.sigMask
	if ready == 0 {
		return
	}
	for sig := uint64(1); sig <= nsig; sig++ {
		if ready&sigBit(sig) == 0 {
			continue
		}
		t.sigPending &^= sigBit(sig)
		info := queuedSigInfo(current, sig)
		a := sigactions[sig]
		if a.handler == sigIgn || a.handler == sigDfl {
			continue // the default action of what Go sends itself is ignore
		}
		pushSignalFrame(t, f, sig, info)
		return
	}
}

// deliverFault turns a fault of the current thread into its signal; it
// reports false when the program has no handler for it (or blocks it),
// which is fatal.
func deliverFault(f *Frame, sf SigFault) bool {
	t := &threads[current]
	a := sigactions[sf.signo]
	if a.handler == sigIgn || a.handler == sigDfl || t.sigMask&sigBit(sf.signo) != 0 || current == 0 {
		return false
	}
	return pushSignalFrame(t, f, sf.signo, sf)
}

// pushSignalFrame builds an rt_sigframe for sig on the thread's stack (its
// alternate stack when the handler asks for it) and points f at the
// handler. The interrupted context, mask and extended state go into the
// frame for rt_sigreturn.
func pushSignalFrame(t *thread, f *Frame, sig uint64, sf SigFault) bool {
	a := sigactions[sig]
	sp := f.RSP - redZone
	if a.flags&saOnstack != 0 && !t.altDisabled && t.altSize > 0 && !onAltStack(t, f.RSP) {
		sp = t.altSP + t.altSize
	}
	xsz := uint64(xsaveUsed)
	fp := (sp - xsz) &^ 63
	sp = ((fp - frameBytes) &^ 15) - 8
	if !userRange(sp, fp+xsz-sp, true) {
		return false
	}
	b := userBytes(sp, int(fp+xsz-sp))
	clear(b[:frameBytes])
	le.PutUint64(b, a.restorer) // pretcode
	uc := b[8:]
	// uc_flags, uc_link = 0; uc_stack describes the alternate stack.
	le.PutUint64(uc[16:], t.altSP)
	if t.altDisabled {
		le.PutUint32(uc[24:], ssDisable)
	}
	le.PutUint64(uc[32:], t.altSize)
	mc := uc[ucMcontext:]
	for i, v := range [...]uint64{
		f.R8, f.R9, f.R10, f.R11, f.R12, f.R13, f.R14, f.R15,
		f.RDI, f.RSI, f.RBP, f.RBX, f.RDX, f.RAX, f.RCX, f.RSP, f.RIP, f.RFLAGS,
	} {
		le.PutUint64(mc[i*8:], v)
	}
	le.PutUint16(mc[144:], uint16(f.CS))
	le.PutUint16(mc[150:], uint16(f.SS))
	le.PutUint64(mc[152:], sf.err)
	le.PutUint64(mc[160:], sf.trapno)
	le.PutUint64(mc[168:], t.sigMask) // oldmask
	le.PutUint64(mc[176:], sf.addr)   // cr2
	le.PutUint64(mc[184:], fp)        // fpstate
	le.PutUint64(uc[ucSigmask:], t.sigMask)
	info := uc[ucSize:]
	le.PutUint32(info, uint32(sig))
	le.PutUint32(info[8:], uint32(sf.code))
	if sf.code == siTimer { // the _timer member of the union
		le.PutUint32(info[16:], uint32(sf.timerID))
		le.PutUint32(info[20:], uint32(sf.overrun))
		le.PutUint64(info[24:], sf.value)
	} else {
		le.PutUint64(info[16:], sf.addr)
	}
	copy(b[fp-sp:], xsaveArea(t, int(xsz)))

	t.sigMask |= a.mask
	if a.flags&saNodefer == 0 {
		t.sigMask |= sigBit(sig)
	}
	f.RSP = sp
	f.RIP = a.handler
	f.RDI = sig
	f.RSI = sp + 8 + ucSize
	f.RDX = sp + 8
	f.RAX = 0
	f.RFLAGS &^= 1<<8 | 1<<10 // TF, DF
	t.inSignal++
	return true
}

// sysSigreturn restores the context saved by pushSignalFrame (possibly
// modified by the handler: Go rewrites RIP and RSP to inject calls).
func sysSigreturn(f *Frame) bool {
	t := &threads[current]
	sp := f.RSP - 8 // the handler's RET popped pretcode
	if !userRange(sp, frameBytes, false) {
		return false
	}
	b := userBytes(sp, frameBytes)
	uc := b[8:]
	mc := uc[ucMcontext:]
	r := func(i int) uint64 { return le.Uint64(mc[i*8:]) }
	f.R8, f.R9, f.R10, f.R11, f.R12, f.R13, f.R14, f.R15 = r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)
	f.RDI, f.RSI, f.RBP, f.RBX, f.RDX, f.RAX, f.RCX, f.RSP = r(8), r(9), r(10), r(11), r(12), r(13), r(14), r(15)
	f.RIP = r(16)
	// Keep the kernel's segment selectors and IF; take the arithmetic flags.
	const userFlags = 0xcd5 | 1<<10 | 1<<8 | 1<<18 // CF PF AF ZF SF OF, DF, TF, AC
	f.RFLAGS = f.RFLAGS&^userFlags | r(17)&userFlags | 1<<9
	f.CS, f.SS = selKernelCode, selKernelData
	t.sigMask = le.Uint64(uc[ucSigmask:]) &^ (sigBit(sigKILL) | sigBit(sigSTOP))
	if fp := le.Uint64(mc[184:]); fp != 0 && fp%64 == 0 && userRange(fp, uint64(xsaveUsed), false) {
		area := xsaveArea(t, xsaveUsed)
		copy(area, userBytes(fp, xsaveUsed))
		sanitizeXsave(area)
	}
	if t.inSignal > 0 {
		t.inSignal--
	}
	return true
}

// xsaveUsed is how much of an XSAVE area the enabled components use.
var xsaveUsed = 512

// sanitizeXsave clears what would make XRSTOR fault: reserved MXCSR bits,
// XSTATE_BV bits beyond XCR0, a compacted-format flag and the reserved
// header bytes (Intel SDM Vol. 1 §13.8).
func sanitizeXsave(area []byte) {
	le.PutUint32(area[24:], le.Uint32(area[24:])&0xffff)
	if xcr0 == 0 || len(area) < 576 {
		return
	}
	le.PutUint64(area[512:], le.Uint64(area[512:])&uint64(xcr0))
	clear(area[520:576])
}
