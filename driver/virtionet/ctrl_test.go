package virtionet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/govirtio/govirtio/virtqueue"
)

// newCtrlHarness is a control queue on a real split queue with its device
// side (ringDevice); wait is what the control queue's interrupt wait does.
func newCtrlHarness(t *testing.T, wait func(context.Context) error) (*ctrlQueue, *ringDevice) {
	t.Helper()
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	q := newRingDevice(t, mem, 16)
	cq, err := newCtrlQueue(q, mem, &counters{})
	if err != nil {
		t.Fatal(err)
	}
	cq.wait = wait
	return cq, q
}

// A command given up while the device still holds its chain leaves the one
// command buffer in the device's hands: later commands are refused, not
// written over it, so a late completion cannot act on their bytes.
func TestCtrlCommandAfterATimeoutIsRefused(t *testing.T) {
	cq, q := newCtrlHarness(t, func(context.Context) error { return context.DeadlineExceeded })
	if err := cq.command(context.Background(), ctrlClassRx, ctrlRxPromisc, []byte{1}); !errors.Is(err, ErrCtrl) {
		t.Fatalf("timed-out command: %v", err)
	}
	posted := len(q.inFlight())
	err := cq.command(context.Background(), ctrlClassRx, ctrlRxAllMulti, []byte{1})
	if !errors.Is(err, errCtrlAbandoned) {
		t.Fatalf("command after the timeout: %v, want errCtrlAbandoned", err)
	}
	if len(q.inFlight()) != posted || cq.mem[1] != ctrlRxPromisc {
		t.Errorf("the command after the timeout was posted or written into the buffer in flight")
	}
}

// A device that answers with ring violations ends the command at once
// (and the queue), instead of keeping it polling.
func TestCtrlDeviceErrorEndsTheCommand(t *testing.T) {
	var q *ringDevice
	var cq *ctrlQueue
	cq, q = newCtrlHarness(t, func(context.Context) error {
		q.pushUsed(999, 0) // an id out of range, every time
		return nil
	})
	q.pushUsed(999, 0)
	done := make(chan error, 1)
	go func() { done <- cq.command(context.Background(), ctrlClassAnnounce, ctrlAnnounceAck, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, virtqueue.ErrBadID) {
			t.Fatalf("command: %v, want the device error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("command still running against a device that only answers with errors")
	}
	if err := cq.command(context.Background(), ctrlClassAnnounce, ctrlAnnounceAck, nil); !errors.Is(err, errCtrlAbandoned) {
		t.Errorf("command after a device error: %v, want errCtrlAbandoned", err)
	}
}
