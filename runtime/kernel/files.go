package kernel

import (
	"sync/atomic"

	"github.com/govirtio/govirtio/runtime/console"
)

// File descriptors: the console (0, 1, 2), epoll instances, eventfds and
// interrupt files (/dev/irq/N, the way a goroutine waits for a device
// interrupt through the Go network poller without holding a thread).
const (
	maxFiles     = 64
	maxEpollRegs = 32
)

// File kinds.
const (
	fileNone = iota
	fileConsole
	fileEpoll
	fileEventfd
	fileIRQ
)

// epoll event bits (include/uapi/linux/eventpoll.h).
const (
	epollIn      = 0x001
	epollOut     = 0x004
	epollErr     = 0x008
	epollHup     = 0x010
	epollRdHup   = 0x2000
	epollET      = 1 << 31
	epollCtlAdd  = 1
	epollCtlDel  = 2
	epollCtlMod  = 3
	epollEvtSize = 12 // struct epoll_event is packed on x86-64
	efdNonblock  = 0x800
	efdSemaphore = 1
)

// epollReg is one fd watched by an epoll instance.
type epollReg struct {
	used    bool
	pending bool   // edge-triggered: became ready since last reported
	fd      int32  // watched fd
	events  uint32 // requested events, EPOLLET included
	data    uint64 // returned with each event
}

// file is an open file description.
type file struct {
	kind     uint8
	nonblock bool
	vector   uint8                  // fileIRQ: the interrupt vector
	gsi      int8                   // fileIRQ on a level-triggered line: its GSI, masked when it fires; else -1
	counter  uint64                 // eventfd counter; interrupts not yet read
	fired    uint64                 // fileIRQ: interrupts since the open (see InterruptCount); atomic
	regs     [maxEpollRegs]epollReg // fileEpoll: the interest list
}

var files [maxFiles]file

func initFiles() {
	for fd := 0; fd < 3; fd++ {
		files[fd] = file{kind: fileConsole}
	}
}

func fileFor(fd int64) *file {
	if fd < 0 || fd >= maxFiles || files[fd].kind == fileNone {
		return nil
	}
	return &files[fd]
}

func allocFD(kind uint8) int64 {
	for fd := 3; fd < maxFiles; fd++ {
		if files[fd].kind == fileNone {
			files[fd] = file{kind: kind, gsi: -1}
			return int64(fd)
		}
	}
	return -eMFILE
}

func closeFD(fd int64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if fd < 3 {
		return 0 // the console stays
	}
	*f = file{}
	// A thread still blocked reading it gets EBADF rather than sleeping on
	// forever.
	for i := int32(1); i < maxThreads; i++ {
		if t := &threads[i]; t.state == threadBlocked && t.wait == waitRead && int64(t.waitFD) == fd {
			wake(i, -eBADF)
		}
	}
	// Drop it from every interest list, as Linux does on last close.
	for i := range files {
		if files[i].kind == fileEpoll {
			for j := range files[i].regs {
				if r := &files[i].regs[j]; r.used && int64(r.fd) == fd {
					*r = epollReg{}
				}
			}
		}
	}
	return 0
}

// readiness is what fd could report now.
func readiness(fd int32) uint32 {
	f := fileFor(int64(fd))
	if f == nil {
		return epollHup | epollErr
	}
	switch f.kind {
	case fileConsole:
		return epollOut
	case fileEventfd:
		if f.counter > 0 {
			return epollIn | epollOut
		}
		return epollOut
	case fileIRQ:
		if f.counter > 0 {
			return epollIn
		}
	}
	return 0
}

func epollCreate() int64 { return allocFD(fileEpoll) }

func epollCtl(epfd int64, op uint64, fd int64, event uint64) int64 {
	ep := fileFor(epfd)
	if ep == nil || ep.kind != fileEpoll || fileFor(fd) == nil || fd == epfd {
		return -eBADF
	}
	var events uint32
	var data uint64
	if op != epollCtlDel {
		if !userRange(event, epollEvtSize, false) {
			return -eFAULT
		}
		b := userBytes(event, epollEvtSize)
		events, data = le.Uint32(b), le.Uint64(b[4:])
	}
	var found *epollReg
	var free *epollReg
	for i := range ep.regs {
		r := &ep.regs[i]
		if r.used && int64(r.fd) == fd {
			found = r
		} else if !r.used && free == nil {
			free = r
		}
	}
	switch op {
	case epollCtlAdd:
		if found != nil {
			return -eEXIST
		}
		if free == nil {
			return -eNOMEM
		}
		*free = epollReg{used: true, pending: true, fd: int32(fd), events: events, data: data}
	case epollCtlMod:
		if found == nil {
			return -eNOENT
		}
		found.events, found.data, found.pending = events, data, true
	case epollCtlDel:
		if found == nil {
			return -eNOENT
		}
		*found = epollReg{}
	default:
		return -eINVAL
	}
	wakeEpollWaiters()
	return 0
}

// collect writes up to max ready events of ep to the user buffer at buf.
func collect(ep *file, buf uint64, max int64) int64 {
	n := int64(0)
	for i := range ep.regs {
		if n >= max {
			break
		}
		r := &ep.regs[i]
		if !r.used {
			continue
		}
		ev := readiness(r.fd) & (r.events | epollErr | epollHup)
		if ev == 0 || (r.events&epollET != 0 && !r.pending) {
			continue
		}
		r.pending = false
		b := userBytes(buf+uint64(n)*epollEvtSize, epollEvtSize)
		le.PutUint32(b, ev)
		le.PutUint64(b[4:], r.data)
		n++
	}
	return n
}

func epollWait(epfd int64, buf uint64, max int64, timeoutMS int64) int64 {
	ep := fileFor(epfd)
	if ep == nil || ep.kind != fileEpoll {
		return -eBADF
	}
	if max <= 0 || max > 1<<16 {
		return -eINVAL
	}
	if !userRange(buf, uint64(max)*epollEvtSize, true) {
		return -eFAULT
	}
	if n := collect(ep, buf, max); n > 0 || timeoutMS == 0 {
		return n
	}
	var deadline int64
	if timeoutMS > 0 {
		deadline = nanotime() + timeoutMS*1e6
	}
	t := &threads[current]
	t.waitFD, t.epEvents, t.epMax = int32(epfd), buf, uint64(max)
	block(waitEpoll, deadline)
	return 0
}

// fdReady records that fd may have become ready and wakes the threads
// waiting for it, directly (a blocking read) or through epoll. It returns
// how many threads it woke.
func fdReady(fd int64) int {
	for i := range files {
		if files[i].kind == fileEpoll {
			for j := range files[i].regs {
				if r := &files[i].regs[j]; r.used && int64(r.fd) == fd {
					r.pending = true
				}
			}
		}
	}
	n := 0
	for i := int32(1); i < maxThreads; i++ {
		t := &threads[i]
		if t.state == threadBlocked && t.wait == waitRead && int64(t.waitFD) == fd {
			if f := fileFor(fd); f != nil && f.counter > 0 && wake(i, takeCount(f, t.epEvents)) {
				n++
			}
		}
	}
	return n + wakeEpollWaiters()
}

// wakeEpollWaiters wakes the epoll waiters that have events to report and
// returns how many it woke.
func wakeEpollWaiters() int {
	woken := 0
	for i := int32(1); i < maxThreads; i++ {
		t := &threads[i]
		if t.state != threadBlocked || t.wait != waitEpoll {
			continue
		}
		ep := fileFor(int64(t.waitFD))
		if ep == nil || ep.kind != fileEpoll {
			wake(i, -eBADF)
			continue
		}
		if n := collect(ep, t.epEvents, int64(t.epMax)); n > 0 && wake(i, n) {
			woken++
		}
	}
	return woken
}

func eventfdCreate(initval, flags uint64) int64 {
	fd := allocFD(fileEventfd)
	if fd < 0 {
		return fd
	}
	files[fd].counter = initval & 0xffffffff
	files[fd].nonblock = flags&efdNonblock != 0
	return fd
}

// takeCount hands the counter to a reader's 8-byte buffer and resets it.
func takeCount(f *file, buf uint64) int64 {
	le.PutUint64(userBytes(buf, 8), f.counter)
	f.counter = 0
	return 8
}

func eventfdRead(f *file, fd int64, buf, n uint64) int64 {
	if n < 8 {
		return -eINVAL
	}
	if f.counter > 0 {
		return takeCount(f, buf)
	}
	if f.nonblock {
		return -eAGAIN
	}
	t := &threads[current]
	t.waitFD, t.epEvents = int32(fd), buf
	block(waitRead, 0)
	return 0
}

func eventfdWrite(f *file, fd int64, buf, n uint64) int64 {
	if n < 8 {
		return -eINVAL
	}
	v := le.Uint64(userBytes(buf, 8))
	if v == ^uint64(0) {
		return -eINVAL
	}
	if f.counter+v < f.counter || f.counter+v == ^uint64(0) {
		return -eAGAIN
	}
	f.counter += v
	fdReady(fd)
	return 8
}

// openDevice opens the interrupt files:
//
//   - /dev/irq/N: vector N (vectorMSIFirst..vectorMSILast), for MSI and
//     MSI-X, which are edge-triggered;
//   - /dev/intx/G: the level-triggered PCI INTx line on I/O APIC input G,
//     active low, routed to vector vectorINTxBase+G. The kernel masks the
//     line each time it fires (the device keeps it asserted until the
//     driver acknowledges it); writing to the file unmasks it again.
//   - /dev/gsi/G: the same for a level-triggered, active-high line, as
//     devices on no bus have (virtio-mmio on QEMU's microvm, whose DSDT
//     describes those lines as level, active high).
func openDevice(name []byte, flags uint64) int64 {
	n, ok := parseSuffix(name, "/dev/irq/")
	gsi := -1
	activeHigh := false
	switch {
	case ok && n >= vectorMSIFirst && n <= vectorMSILast:
	case ok:
		return -eINVAL
	default:
		if n, ok = parseSuffix(name, "/dev/intx/"); !ok {
			if n, ok = parseSuffix(name, "/dev/gsi/"); !ok {
				return -eNOENT
			}
			activeHigh = true
		}
		if n >= ioapicEntries {
			return -eINVAL
		}
		gsi, n = n, vectorINTxBase+n
	}
	for i := range files {
		if files[i].kind == fileIRQ && int(files[i].vector) == n {
			return -eEXIST // one owner per vector
		}
	}
	fd := allocFD(fileIRQ)
	if fd < 0 {
		return fd
	}
	files[fd].vector = uint8(n)
	files[fd].gsi = int8(gsi)
	files[fd].nonblock = flags&oNonblock != 0
	if gsi >= 0 {
		gsiActiveHigh[gsi] = activeHigh
		routeGSI(gsi, false)
	}
	return fd
}

// parseSuffix parses name as prefix followed by a decimal number.
func parseSuffix(name []byte, prefix string) (int, bool) {
	if len(name) <= len(prefix) || string(name[:len(prefix)]) != prefix {
		return 0, false
	}
	v := 0
	for _, c := range name[len(prefix):] {
		if c < '0' || c > '9' || v > 1000 {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// deviceInterrupt counts interrupt vector v on its file and wakes its
// waiters; a level-triggered line is masked until the program re-arms it.
// It returns how many threads it woke.
func deviceInterrupt(v uint64) int {
	stats.DeviceInterrupts++
	for fd := range files {
		if f := &files[fd]; f.kind == fileIRQ && uint64(f.vector) == v {
			f.counter++
			atomic.AddUint64(&f.fired, 1)
			if f.gsi >= 0 {
				routeGSI(int(f.gsi), true)
			}
			n := fdReady(int64(fd))
			stats.InterruptWakes += uint64(n)
			return n
		}
	}
	return 0
}

// irqRearm unmasks an INTx line (a write to its file).
func irqRearm(f *file) int64 {
	if f.gsi >= 0 {
		routeGSI(int(f.gsi), false)
	}
	return 8
}

func sysWriteFD(fd int64, buf, n uint64) int64 {
	if n > 1<<30 {
		n = 1 << 30
	}
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if !userRange(buf, n, false) {
		return -eFAULT
	}
	switch f.kind {
	case fileConsole:
		console.Write(userBytes(buf, int(n)))
		return int64(n)
	case fileEventfd:
		return eventfdWrite(f, fd, buf, n)
	case fileIRQ:
		return irqRearm(f)
	}
	return -eINVAL
}

func sysReadFD(fd int64, buf, n uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if !userRange(buf, n, true) {
		return -eFAULT
	}
	switch f.kind {
	case fileConsole:
		return 0 // no input: end of file
	case fileEventfd, fileIRQ: // an IRQ file reads like an eventfd: the count since the last read
		return eventfdRead(f, fd, buf, n)
	}
	return -eINVAL
}

// sysOpenPath opens the few paths the kernel provides (/dev/irq/N); the
// Go runtime's probes of /sys and /proc get ENOENT, which it expects.
func sysOpenPath(path, flags uint64) int64 {
	var name [64]byte
	n := 0
	for n < len(name) {
		if !userRange(path+uint64(n), 1, false) {
			return -eFAULT
		}
		c := userBytes(path+uint64(n), 1)[0]
		if c == 0 {
			break
		}
		name[n] = c
		n++
	}
	return openDevice(name[:n], flags)
}

const (
	fGetFD    = 1
	fSetFD    = 2
	fGetFL    = 3
	fSetFL    = 4
	oRDWR     = 2
	oNonblock = 0x800
)

func sysFcntlFD(fd int64, cmd, arg uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	switch cmd {
	case fGetFD, fSetFD:
		return 0
	case fGetFL:
		if f.nonblock {
			return oRDWR | oNonblock
		}
		return oRDWR
	case fSetFL:
		f.nonblock = arg&oNonblock != 0
		return 0
	}
	return -eINVAL
}
