package kernel

import "testing"

// A wait that times out in the very trap that blocked it (a short
// timeout and a slow trap) returns the timeout's result, whether the
// thread keeps the CPU or another runs first.
func TestWaitTimingOutInItsOwnTrapReturnsItsResult(t *testing.T) {
	for _, other := range []bool{false, true} {
		k := setupKernel(t)
		word, b := k.at(0, 4)
		le64.PutUint32(b, 1)
		ts, tb := k.at(64, 16)
		le64.PutUint64(tb, 0)
		le64.PutUint64(tb[8:], 1000)
		waiter := current
		if other {
			makeRunnable(newThread())
		}
		f := &Frame{RAX: sysFutex, RDI: word, RSI: futexWait | futexPrivate, RDX: 1, R10: ts}
		doSyscall(f)
		expireTimeouts(threads[waiter].deadline + 1)
		schedule(f, false)
		got := int64(f.RAX)
		if current != waiter {
			got = int64(threads[waiter].frame.RAX)
		}
		if got != -eTIMEDOUT {
			t.Errorf("another thread runnable %v: the futex wait returned %d, want -ETIMEDOUT", other, got)
		}
	}
}

// Every slot of the thread table can be taken (a burst of blocked socket
// calls makes hundreds of threads; Go dies when clone fails), each with
// an XSAVE area of its own, taken from memory when the slot is first used
// and kept with it: a slot freed and taken again costs no frame.
func TestEveryThreadSlotGetsAnXsaveAreaOfItsOwn(t *testing.T) {
	setupKernel(t)
	seen := map[uintptr]bool{threads[0].xsave: true, threads[current].xsave: true}
	for n := 2; n < maxThreads; n++ {
		i := newThread()
		if i < 0 {
			t.Fatalf("thread %d of %d: the table is full", n, maxThreads-1)
		}
		threads[i].state = threadRunnable
		x := threads[i].xsave
		if x == 0 || x%64 != 0 || seen[x] {
			t.Fatalf("thread %d: XSAVE area %#x (zero, misaligned or shared)", i, x)
		}
		seen[x] = true
	}
	if i := newThread(); i != -1 {
		t.Errorf("a thread past the table's %d slots: %d", maxThreads, i)
	}
	if threadsTop != maxThreads {
		t.Errorf("threadsTop = %d, want %d", threadsTop, maxThreads)
	}
	threads[7].state = threadFree
	x, free := threads[7].xsave, frames.Free()
	if i := newThread(); i != 7 || threads[7].xsave != x || frames.Free() != free {
		t.Errorf("reusing slot 7: got slot %d, area %#x (was %#x), %d frames taken", i, threads[7].xsave, x, free-frames.Free())
	}
}
