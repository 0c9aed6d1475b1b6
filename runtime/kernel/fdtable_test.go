package kernel

import (
	"strconv"
	"testing"
)

// openEventfds opens n non-blocking eventfds and returns their fds.
func openEventfds(t *testing.T, n int) []int64 {
	t.Helper()
	fds := make([]int64, n)
	for i := range fds {
		_, fd := call(sysEventfd2, 0, efdNonblock)
		if fd < 0 {
			t.Fatalf("eventfd number %d failed: %d", i, fd)
		}
		fds[i] = fd
	}
	return fds
}

// signal adds 1 to eventfd fd.
func (k *testKernel) signal(t *testing.T, fd int64) {
	t.Helper()
	buf, b := k.at(4000, 8)
	le64.PutUint64(b, 1)
	if _, r := call(sysWrite, uint64(fd), buf, 8); r != 8 {
		t.Fatalf("eventfd write to %d returned %d", fd, r)
	}
}

// watch registers fd with epoll instance ep for events, its data the fd.
func (k *testKernel) watch(t *testing.T, ep, fd int64, events uint32) {
	t.Helper()
	ev, evb := k.at(4016, 12)
	le64.PutUint32(evb, events)
	le64.PutUint64(evb[4:], uint64(fd))
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlAdd, uint64(fd), ev); r != 0 {
		t.Fatalf("epoll_ctl add %d returned %d", fd, r)
	}
}

// wait runs a non-blocking epoll_wait for up to max events and returns
// the data (fds) of those reported.
func (k *testKernel) wait(t *testing.T, ep int64, max int) []int64 {
	t.Helper()
	out, ob := k.at(8192, 12*max)
	_, n := call(sysEpollPwait, uint64(ep), out, uint64(max), 0)
	if n < 0 {
		t.Fatalf("epoll_pwait returned %d", n)
	}
	var got []int64
	for i := 0; i < int(n); i++ {
		got = append(got, int64(le64.Uint64(ob[i*12+4:])))
	}
	return got
}

func TestDescriptorTableHoldsTwentyThousandFilesLowestFirst(t *testing.T) {
	setupKernel(t)
	fds := openEventfds(t, 20000)
	for i, fd := range fds {
		if fd != int64(i+3) {
			t.Fatalf("eventfd number %d got fd %d, want %d (the lowest free)", i, fd, i+3)
		}
	}
	if _, r := call(sysClose, uint64(fds[777])); r != 0 {
		t.Fatalf("close returned %d", r)
	}
	if _, fd := call(sysEventfd2, 0, efdNonblock); fd != fds[777] {
		t.Errorf("after closing fd %d the next open got %d, want it back", fds[777], fd)
	}
	if openFiles != 20003 {
		t.Errorf("openFiles = %d, want 20003", openFiles)
	}
}

func TestDescriptorTableFullGivesEMFILE(t *testing.T) {
	setupKernel(t)
	openEventfds(t, maxFiles-3)
	if _, fd := call(sysEventfd2, 0, efdNonblock); fd != -eMFILE {
		t.Errorf("open past %d files returned %d, want -EMFILE", maxFiles, fd)
	}
	call(sysClose, 5000)
	if _, fd := call(sysEventfd2, 0, efdNonblock); fd != 5000 {
		t.Errorf("open after a close in a full table returned %d, want 5000", fd)
	}
}

func TestFewDescriptorsCostOneFrame(t *testing.T) {
	setupKernel(t) // the console's 0, 1, 2
	free := frames.Free()
	openEventfds(t, filesPerChunk-3)
	if used := free - frames.Free(); used != 0 {
		t.Errorf("filling the first chunk took %d more frames", used)
	}
	openEventfds(t, 1)
	if used := free - frames.Free(); used != 1 {
		t.Errorf("the first fd of the second chunk took %d frames, want 1", used)
	}
}

func TestRlimitNofileReportsTheTableSize(t *testing.T) {
	k := setupKernel(t)
	old, ob := k.at(0, 16)
	if _, r := call(sysPrlimit64, 0, 7, 0, old); r != 0 {
		t.Fatalf("prlimit64 returned %d", r)
	}
	if cur, max := le64.Uint64(ob), le64.Uint64(ob[8:]); cur != maxFiles || max != maxFiles || maxFiles < 16384 {
		t.Errorf("RLIMIT_NOFILE is %d/%d, want %d/%d (at least 16384)", cur, max, maxFiles, maxFiles)
	}
}

func TestEpollWaitCostFollowsReadyEventsNotRegistrations(t *testing.T) {
	k := setupKernel(t)
	_, ep := call(sysEpollCreate1, 0)
	fds := openEventfds(t, 10000)
	for _, fd := range fds {
		k.watch(t, ep, fd, epollIn|epollOut|epollRdHup|epollET)
	}
	// An eventfd is writable at once: each registration reports one
	// EPOLLOUT edge, as on Linux.
	for n := 0; n < len(fds); {
		got := k.wait(t, ep, 128)
		if len(got) == 0 {
			t.Fatalf("only %d of %d initial write edges reported", n, len(fds))
		}
		n += len(got)
	}
	if got := k.wait(t, ep, 128); len(got) != 0 {
		t.Fatalf("%d edges reported twice", len(got))
	}
	before := collectVisits
	for _, i := range []int{17, 5000, 9999} {
		k.signal(t, fds[i])
	}
	got := k.wait(t, ep, 128)
	if len(got) != 3 || got[0] != fds[17] || got[1] != fds[5000] || got[2] != fds[9999] {
		t.Errorf("reported %v, want fds %d, %d, %d in the order they became ready", got, fds[17], fds[5000], fds[9999])
	}
	if v := collectVisits - before; v != 3 {
		t.Errorf("epoll_wait looked at %d registrations for 3 events among 10000", v)
	}
}

func TestEpollWaitReportsAtMostMaxAndKeepsTheRest(t *testing.T) {
	k := setupKernel(t)
	_, ep := call(sysEpollCreate1, 0)
	fds := openEventfds(t, 5)
	for _, fd := range fds {
		k.watch(t, ep, fd, epollIn|epollET)
		k.signal(t, fd)
	}
	var all []int64
	for _, want := range []int{2, 2, 1, 0} {
		got := k.wait(t, ep, 2)
		if len(got) != want {
			t.Fatalf("wait reported %d events, want %d", len(got), want)
		}
		all = append(all, got...)
	}
	for i, fd := range fds {
		if all[i] != fd {
			t.Errorf("events in order %v, want %v", all, fds)
			break
		}
	}
}

func TestLevelTriggeredReportsUntilDrainedEdgeTriggeredOnce(t *testing.T) {
	k := setupKernel(t)
	_, ep := call(sysEpollCreate1, 0)
	fds := openEventfds(t, 2)
	level, edge := fds[0], fds[1]
	k.watch(t, ep, level, epollIn)
	k.watch(t, ep, edge, epollIn|epollET)
	k.signal(t, level)
	k.signal(t, edge)
	if got := k.wait(t, ep, 8); len(got) != 2 {
		t.Fatalf("first wait reported %v, want both", got)
	}
	for i := 0; i < 3; i++ {
		if got := k.wait(t, ep, 8); len(got) != 1 || got[0] != level {
			t.Fatalf("wait %d reported %v, want the level-triggered fd %d alone", i, got, level)
		}
	}
	buf, _ := k.at(0, 8)
	call(sysRead, uint64(level), buf, 8)
	if got := k.wait(t, ep, 8); len(got) != 0 {
		t.Errorf("after draining, wait reported %v", got)
	}
	k.signal(t, edge) // a new edge
	if got := k.wait(t, ep, 8); len(got) != 1 || got[0] != edge {
		t.Errorf("a second write reported %v, want the edge-triggered fd again", got)
	}
}

func TestOneshotReportsOnceUntilModified(t *testing.T) {
	k := setupKernel(t)
	_, ep := call(sysEpollCreate1, 0)
	fd := openEventfds(t, 1)[0]
	k.watch(t, ep, fd, epollIn|epollOneshot)
	k.signal(t, fd)
	if got := k.wait(t, ep, 8); len(got) != 1 {
		t.Fatalf("one-shot reported %v", got)
	}
	k.signal(t, fd)
	if got := k.wait(t, ep, 8); len(got) != 0 {
		t.Fatalf("one-shot reported again before EPOLL_CTL_MOD: %v", got)
	}
	ev, evb := k.at(4016, 12)
	le64.PutUint32(evb, epollIn|epollOneshot)
	le64.PutUint64(evb[4:], uint64(fd))
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlMod, uint64(fd), ev); r != 0 {
		t.Fatalf("epoll_ctl mod returned %d", r)
	}
	if got := k.wait(t, ep, 8); len(got) != 1 {
		t.Errorf("after EPOLL_CTL_MOD a ready one-shot reported %v", got)
	}
}

func TestClosingWatchedFdOrInstanceFreesRegistrations(t *testing.T) {
	k := setupKernel(t)
	_, ep := call(sysEpollCreate1, 0)
	_, ep2 := call(sysEpollCreate1, 0)
	fds := openEventfds(t, 100)
	for _, fd := range fds {
		k.watch(t, ep, fd, epollIn|epollET)
		k.watch(t, ep2, fd, epollIn|epollET)
	}
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlAdd, uint64(fds[0]), k.userBase+4016); r != -eEXIST {
		t.Errorf("a second add of the same fd returned %d, want -EEXIST", r)
	}
	k.signal(t, fds[10])
	call(sysClose, uint64(fds[10])) // queued on both ready lists
	if got := k.wait(t, ep, 8); len(got) != 0 {
		t.Errorf("a closed fd was reported: %v", got)
	}
	if epollRegsUsed != 198 {
		t.Errorf("%d registrations after closing one of 100 fds watched twice, want 198", epollRegsUsed)
	}
	call(sysClose, uint64(ep2))
	if epollRegsUsed != 99 {
		t.Errorf("%d registrations after closing an instance, want 99", epollRegsUsed)
	}
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlDel, uint64(fds[20]), 0); r != 0 || epollRegsUsed != 98 {
		t.Errorf("EPOLL_CTL_DEL returned %d, %d registrations left", r, epollRegsUsed)
	}
	// Freed registrations are reused before new ones are made.
	next := epollRegNext
	k.watch(t, ep, fds[20], epollIn)
	if epollRegNext != next {
		t.Errorf("a new registration did not reuse a freed one")
	}
}

func TestInterruptFindsItsFileAmongThousands(t *testing.T) {
	k := setupKernel(t)
	openEventfds(t, 3000)
	fd := k.openIRQ(t, vectorMSIFirst+1)
	before := collectVisits
	deviceInterrupt(vectorMSIFirst + 1)
	if InterruptCount(int(fd)) != 1 {
		t.Errorf("InterruptCount = %d after one interrupt", InterruptCount(int(fd)))
	}
	if collectVisits != before {
		t.Errorf("an interrupt nobody watches made epoll look at registrations")
	}
	call(sysClose, uint64(fd))
	if irqFile[vectorMSIFirst+1] != 0 {
		t.Errorf("closing the interrupt file left the vector owned")
	}
}

// openIRQ opens /dev/irq/vector.
func (k *testKernel) openIRQ(t *testing.T, vector int) int64 {
	t.Helper()
	path := k.cstring(6000, "/dev/irq/"+strconv.Itoa(vector))
	_, fd := call(sysOpenat, ^uint64(99), path, oRDWR|oNonblock)
	if fd < 0 {
		t.Fatalf("open /dev/irq/%d returned %d", vector, fd)
	}
	return fd
}
