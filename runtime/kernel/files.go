package kernel

import (
	"sync/atomic"

	"github.com/govirtio/govirtio/runtime/console"
)

// Files: the console (0, 1, 2), files and directories of the read-only
// tree (fs.go), epoll instances, eventfds, interrupt files (/dev/irq/N, the
// way a goroutine waits for a device interrupt through the Go network
// poller without holding a thread) and sockets (socket.go). fdtable.go
// holds the descriptor table, epoll.go the epoll instances.

// File kinds.
const (
	fileNone = iota
	fileConsole
	fileEpoll
	fileEventfd
	fileIRQ
	fileRegular // a file or directory of the read-only tree (fs.go)
	fileSocket
	fileCloseQueue // closed sockets for the serve side's closer (socket.go)
)

// eventfd flags (include/uapi/linux/eventfd.h).
const (
	efdNonblock  = 0x800
	efdSemaphore = 1
)

// file is an open file description. It lives in a chunk of the
// descriptor table (fdtable.go), in memory the kernel took from the frame
// allocator: it must hold no Go pointers.
type file struct {
	counter uint64 // eventfd counter; interrupts not yet read
	fired   uint64 // fileIRQ: interrupts since the open (see InterruptCount); atomic
	// watchers heads the list of epoll registrations watching this file.
	watchers int32
	// fileEpoll: the heads of the interest list and of the ready list
	// (and its tail), registration indices (epoll.go).
	interest, readyHead, readyTail int32
	kind                           uint8
	nonblock                       bool
	vector                         uint8 // fileIRQ: the interrupt vector
	gsi                            int8  // fileIRQ on a level-triggered line: its GSI, masked when it fires; else -1
	// epollWaiting says a thread may be blocked in epoll_wait on this
	// instance; readWaiting that one may be blocked reading this file
	// (or, for a socket, waiting for its readiness). Each saves a scan of
	// the thread table when nobody waits.
	epollWaiting, readWaiting bool
	// fileSocket (socket.go): the generation that tells this socket from
	// earlier ones on the same descriptor, its readiness (epoll bits) as
	// the serve loop last reported it and that report's version, and
	// whether the descriptor is still being opened (socket, accept).
	sockGen, sockReady, sockVer uint32
	sockOpening                 bool
	// sockServed: the serve loop has made the stack's socket (socket(2)
	// itself is the kernel's alone). sockDomain, sockType and sockProto
	// are what socket(2) asked for. sockLocal and sockPeer are the
	// addresses the serve loop last reported (lengths 0: none).
	sockServed                      bool
	sockListening                   bool // listen(2) succeeded on it
	sockDomain, sockType, sockProto uint8
	sockLocalLen, sockPeerLen       uint8
	sockLocal, sockPeer             [sockNameSize]byte
	// fileRegular (fs.go): its node in the packed tree, and the read
	// offset (for a directory, getdents64's next entry).
	node uint32
	pos  uint64
}

func closeFD(fd int64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if fd < 3 {
		return 0 // the console stays
	}
	if f.kind == fileSocket && f.sockOpening {
		return -eBADF // not handed out yet
	}
	socket, handle, served := f.kind == fileSocket, sockHandle(fd, f), f.sockServed
	// Drop it from every interest list, as Linux does on last close.
	dropWatchers(fd, f)
	if f.kind == fileCloseQueue {
		closeQueueFD = -1
	}
	if f.kind == fileIRQ && irqFile[f.vector] == int32(fd)+1 {
		irqFile[f.vector] = 0
	}
	*f = file{}
	freeFD(fd)
	// A thread still blocked reading it, or in epoll_wait on it, gets
	// EBADF rather than sleeping on forever.
	for i := int32(1); i < threadsTop; i++ {
		if t := &threads[i]; t.state == threadBlocked && (t.wait == waitRead || t.wait == waitEpoll || t.wait == waitSockReady) && int64(t.waitFD) == fd {
			wake(i, -eBADF)
		}
	}
	if socket {
		return closeSocket(handle, served)
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
	case fileSocket:
		return f.sockReady
	case fileCloseQueue:
		if closeLen > 0 {
			return epollIn
		}
	}
	return 0
}

func eventfdCreate(initval, flags uint64) int64 {
	fd := allocFD(fileEventfd)
	if fd < 0 {
		return fd
	}
	f := fileSlot(fd)
	f.counter = initval & 0xffffffff
	f.nonblock = flags&efdNonblock != 0
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
	f.readWaiting = true
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
		if _, _, ok := ioapicFor(n); !ok {
			return -eINVAL // no I/O APIC serves it
		}
		gsi, n = n, vectorINTxBase+n
	}
	if irqFile[n] != 0 {
		return -eEXIST // one owner per vector
	}
	fd := allocFD(fileIRQ)
	if fd < 0 {
		return fd
	}
	f := fileSlot(fd)
	f.vector = uint8(n)
	f.gsi = int8(gsi)
	f.nonblock = flags&oNonblock != 0
	irqFile[n] = int32(fd) + 1
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
	if v >= uint64(len(irqFile)) || irqFile[v] == 0 {
		return 0
	}
	fd := int64(irqFile[v] - 1)
	f := fileFor(fd)
	if f == nil || f.kind != fileIRQ {
		return 0
	}
	f.counter++
	atomic.AddUint64(&f.fired, 1)
	if f.gsi >= 0 {
		routeGSI(int(f.gsi), true)
	}
	n := fdReady(fd)
	stats.InterruptWakes += uint64(n)
	return n
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
	case fileRegular:
		return -eBADF // opened read-only
	case fileSocket:
		if !f.sockOpening {
			return sockRW(fd, f, opSendTo, buf, n)
		}
	}
	return -eINVAL
}

func sysReadFD(fd int64, buf, n uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if f.kind == fileRegular {
		return fsRead(f, buf, n) // checks only the part of buf it fills
	}
	if !userRange(buf, n, true) {
		return -eFAULT
	}
	switch f.kind {
	case fileConsole:
		return 0 // no input: end of file
	case fileEventfd, fileIRQ: // an IRQ file reads like an eventfd: the count since the last read
		return eventfdRead(f, fd, buf, n)
	case fileSocket:
		if !f.sockOpening {
			return sockRW(fd, f, opRecvFrom, buf, n)
		}
	case fileCloseQueue:
		return readCloseQueue(buf, n)
	}
	return -eINVAL
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
		if f.kind == fileRegular { // open(2) allows read-only files only
			if f.nonblock {
				return oLargefile | oNonblock
			}
			return oLargefile
		}
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
