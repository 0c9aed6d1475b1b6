package kernel

import (
	"unsafe"

	"github.com/govirtio/govirtio/runtime/mem"
)

// epoll. Each registration (an fd watched by an epoll instance) is an
// epollReg in a pool that grows by frames as registrations are made, like
// the descriptor table. A registration is on three lists: the watched
// file's (so that an event on the file finds its watchers at once), its
// instance's interest list (to drop them all when the instance closes)
// and, while it may have an event to report, its instance's ready list.
// An event queues the registration on the ready list; epoll_wait looks at
// the ready list only, so its cost follows the events reported, not the
// fds watched. As in Linux, the ready list is a hint: epoll_wait asks the
// file for its readiness before reporting, drops what is no longer ready,
// and keeps level-triggered registrations queued while they stay ready.

// epoll event and control values (include/uapi/linux/eventpoll.h).
const (
	epollIn      = 0x001
	epollOut     = 0x004
	epollErr     = 0x008
	epollHup     = 0x010
	epollRdHup   = 0x2000
	epollOneshot = 1 << 30
	epollET      = 1 << 31
	epollCtlAdd  = 1
	epollCtlDel  = 2
	epollCtlMod  = 3
	epollEvtSize = 12 // struct epoll_event is packed on x86-64
)

// epollReg is one fd watched by one epoll instance. Links are indices
// into the pool; 0 is no registration (index 0 is never handed out), so
// that a zeroed frame is a pool of unlinked registrations.
type epollReg struct {
	data      uint64 // returned with each event
	events    uint32 // requested events, EPOLLET and EPOLLONESHOT included
	fd        int32  // the watched fd
	ep        int32  // the epoll instance's fd
	nextOfFD  int32  // next registration watching the same fd; free list link when unused
	prevOfEp  int32  // the instance's interest list
	nextOfEp  int32
	prevReady int32 // the instance's ready list
	nextReady int32
	queued    bool // on the ready list
	disabled  bool // EPOLLONESHOT fired: nothing is reported until EPOLL_CTL_MOD
	used      bool
}

const (
	// maxEpollRegs bounds the registrations (one per watched fd is what
	// Go's netpoller makes).
	maxEpollRegs   = maxFiles
	regsPerChunk   = mem.PageSize / int(unsafe.Sizeof(epollReg{}))
	epollRegChunks = (maxEpollRegs + regsPerChunk - 1) / regsPerChunk
)

var (
	// epollRegChunk holds the physical address of each frame of
	// registrations, 0 until needed.
	epollRegChunk [epollRegChunks]uint64
	// epollRegFree heads the free list (linked through nextOfFD);
	// epollRegNext is the lowest index never handed out.
	epollRegFree, epollRegNext int32
	// epollRegsUsed counts the registrations in use.
	epollRegsUsed int
	// collectVisits counts the registrations epoll_wait looked at (tests
	// check that it follows the events, not the registrations).
	collectVisits uint64
)

func initEpollRegs() {
	epollRegChunk = [epollRegChunks]uint64{}
	epollRegFree, epollRegNext, epollRegsUsed = 0, 1, 0
}

// reg returns registration i (i > 0).
func reg(i int32) *epollReg {
	c := epollRegChunk[int(i)/regsPerChunk]
	return &(*[regsPerChunk]epollReg)(physPtr(c))[int(i)%regsPerChunk]
}

// newReg takes a free registration, or returns 0 when none is left.
func newReg() int32 {
	i := epollRegFree
	if i != 0 {
		epollRegFree = reg(i).nextOfFD
	} else {
		if int(epollRegNext) >= maxEpollRegs {
			return 0
		}
		i = epollRegNext
		if ci := int(i) / regsPerChunk; epollRegChunk[ci] == 0 {
			p, ok := allocZeroed()
			if !ok {
				return 0
			}
			epollRegChunk[ci] = p
		}
		epollRegNext++
	}
	*reg(i) = epollReg{used: true}
	epollRegsUsed++
	return i
}

// dropReg unlinks registration i from its file, its instance's interest
// and ready lists, and frees it.
func dropReg(i int32) {
	r := reg(i)
	if f := fileSlot(int64(r.fd)); f != nil {
		for p := &f.watchers; *p != 0; p = &reg(*p).nextOfFD {
			if *p == i {
				*p = r.nextOfFD
				break
			}
		}
	}
	if ep := fileSlot(int64(r.ep)); ep != nil {
		unqueue(ep, i)
		if r.prevOfEp != 0 {
			reg(r.prevOfEp).nextOfEp = r.nextOfEp
		} else {
			ep.interest = r.nextOfEp
		}
		if r.nextOfEp != 0 {
			reg(r.nextOfEp).prevOfEp = r.prevOfEp
		}
	}
	*r = epollReg{nextOfFD: epollRegFree}
	epollRegFree = i
	epollRegsUsed--
}

// enqueue puts registration i at the tail of ep's ready list.
func enqueue(ep *file, i int32) {
	r := reg(i)
	if r.queued {
		return
	}
	r.queued, r.nextReady, r.prevReady = true, 0, ep.readyTail
	if ep.readyTail != 0 {
		reg(ep.readyTail).nextReady = i
	} else {
		ep.readyHead = i
	}
	ep.readyTail = i
}

// unqueue takes registration i off ep's ready list.
func unqueue(ep *file, i int32) {
	r := reg(i)
	if !r.queued {
		return
	}
	if r.prevReady != 0 {
		reg(r.prevReady).nextReady = r.nextReady
	} else {
		ep.readyHead = r.nextReady
	}
	if r.nextReady != 0 {
		reg(r.nextReady).prevReady = r.prevReady
	} else {
		ep.readyTail = r.prevReady
	}
	r.queued, r.prevReady, r.nextReady = false, 0, 0
}

// dropWatchers drops every registration of fd (its last close, as Linux
// does) and, when fd is an epoll instance, every registration it holds.
func dropWatchers(fd int64, f *file) {
	for f.watchers != 0 {
		dropReg(f.watchers)
	}
	if f.kind == fileEpoll {
		for f.interest != 0 {
			dropReg(f.interest)
		}
	}
}

func epollCreate() int64 { return allocFD(fileEpoll) }

func epollCtl(epfd int64, op uint64, fd int64, event uint64) int64 {
	ep := fileFor(epfd)
	f := fileFor(fd)
	if ep == nil || f == nil {
		return -eBADF
	}
	if ep.kind != fileEpoll || fd == epfd {
		return -eINVAL
	}
	if f.kind == fileRegular {
		return -ePERM // as Linux: regular files are always ready, so Go reads them without the poller
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
	found := int32(0)
	for i := f.watchers; i != 0; i = reg(i).nextOfFD {
		if reg(i).ep == int32(epfd) {
			found = i
			break
		}
	}
	switch op {
	case epollCtlAdd:
		if found != 0 {
			return -eEXIST
		}
		i := newReg()
		if i == 0 {
			return -eNOSPC // Linux's answer past max_user_watches
		}
		r := reg(i)
		r.fd, r.ep, r.events, r.data = int32(fd), int32(epfd), events, data
		r.nextOfFD, f.watchers = f.watchers, i
		r.nextOfEp = ep.interest
		if ep.interest != 0 {
			reg(ep.interest).prevOfEp = i
		}
		ep.interest = i
		found = i
	case epollCtlMod:
		if found == 0 {
			return -eNOENT
		}
		r := reg(found)
		r.events, r.data, r.disabled = events, data, false
	case epollCtlDel:
		if found == 0 {
			return -eNOENT
		}
		dropReg(found)
		return 0
	default:
		return -eINVAL
	}
	// Whatever is ready now is an event, as on Linux.
	if readiness(int32(fd))&(events|epollErr|epollHup) != 0 {
		enqueue(ep, found)
		wakeEpollWaiters(epfd, ep)
	}
	return 0
}

// collect writes up to max ready events of ep to the user buffer at buf.
// It looks only at the ready list: what is no longer ready leaves it,
// edge-triggered and one-shot registrations leave it once reported, and
// level-triggered ones go to its tail to be looked at again next time.
func collect(ep *file, buf uint64, max int64) int64 {
	n := int64(0)
	var again, againTail int32 // level-triggered registrations to requeue
	for n < max && ep.readyHead != 0 {
		i := ep.readyHead
		unqueue(ep, i)
		collectVisits++
		r := reg(i)
		if r.disabled {
			continue
		}
		ev := readiness(r.fd) & (r.events | epollErr | epollHup)
		if ev == 0 {
			continue
		}
		b := userBytes(buf+uint64(n)*epollEvtSize, epollEvtSize)
		le.PutUint32(b, ev)
		le.PutUint64(b[4:], r.data)
		n++
		switch {
		case r.events&epollOneshot != 0:
			r.disabled = true
		case r.events&epollET == 0:
			r.nextReady = 0
			if againTail != 0 {
				reg(againTail).nextReady = i
			} else {
				again = i
			}
			againTail = i
		}
	}
	for i := again; i != 0; {
		next := reg(i).nextReady
		enqueue(ep, i)
		i = next
	}
	return n
}

func epollWait(epfd int64, buf uint64, max int64, timeoutMS int64) int64 {
	ep := fileFor(epfd)
	if ep == nil {
		return -eBADF
	}
	if ep.kind != fileEpoll || max <= 0 || max > 1<<16 {
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
	ep.epollWaiting = true
	block(waitEpoll, deadline)
	return 0
}

// fdReady records that fd may have become ready: its registrations go on
// their instances' ready lists, and the threads waiting for it, directly
// (a blocking read) or through epoll, are woken. It returns how many
// threads it woke.
func fdReady(fd int64) int {
	f := fileFor(fd)
	if f == nil {
		return 0
	}
	n := 0
	if f.readWaiting {
		f.readWaiting = false
		for i := int32(1); i < threadsTop; i++ {
			t := &threads[i]
			if t.state == threadBlocked && t.wait == waitRead && int64(t.waitFD) == fd {
				if f.counter > 0 && wake(i, takeCount(f, t.epEvents)) {
					n++
				} else {
					f.readWaiting = true
				}
			}
		}
	}
	ready := readiness(int32(fd))
	for i := f.watchers; i != 0; i = reg(i).nextOfFD {
		r := reg(i)
		if r.disabled || ready&(r.events|epollErr|epollHup) == 0 {
			continue
		}
		if ep := fileSlot(int64(r.ep)); ep != nil {
			enqueue(ep, i)
			n += wakeEpollWaiters(int64(r.ep), ep)
		}
	}
	return n
}

// wakeEpollWaiters wakes the threads waiting on epoll instance epfd that
// have events to report, and returns how many it woke.
func wakeEpollWaiters(epfd int64, ep *file) int {
	if !ep.epollWaiting || ep.readyHead == 0 {
		return 0
	}
	ep.epollWaiting = false
	woken := 0
	for i := int32(1); i < threadsTop; i++ {
		t := &threads[i]
		if t.state != threadBlocked || t.wait != waitEpoll || int64(t.waitFD) != epfd {
			continue
		}
		if ep.readyHead == 0 {
			ep.epollWaiting = true // events ran out before this waiter
			break
		}
		if n := collect(ep, t.epEvents, int64(t.epMax)); n > 0 && wake(i, n) {
			woken++
		} else {
			ep.epollWaiting = true
		}
	}
	return woken
}
