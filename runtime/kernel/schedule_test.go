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
