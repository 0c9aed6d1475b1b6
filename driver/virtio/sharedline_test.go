package virtio

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// chanLine is a platform interrupt fired by sending on it.
type chanLine chan struct{}

func (c chanLine) Wait(ctx context.Context) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSharedLineWakesTheInterruptsTheStatusNames(t *testing.T) {
	line := make(chanLine, 1)
	var status atomic.Uint32
	var acks atomic.Int32
	s := NewSharedLine(line, 3, func() uint32 { acks.Add(1); return status.Swap(0) })
	s.SetBits(2, InterruptConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	quiet := func(i int) bool {
		c, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer stop()
		return errors.Is(s.Interrupt(i).Wait(c), context.DeadlineExceeded)
	}

	status.Store(InterruptUsedBuffer)
	line <- struct{}{}
	for i := range 2 {
		if err := s.Interrupt(i).Wait(ctx); err != nil {
			t.Fatalf("queue %d: %v", i, err)
		}
	}
	if !quiet(2) {
		t.Errorf("the configuration interrupt fired on a used-buffer status")
	}
	status.Store(InterruptConfig)
	line <- struct{}{}
	if err := s.Interrupt(2).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !quiet(0) {
		t.Errorf("a queue interrupt fired on a configuration status")
	}
	if n := acks.Load(); n != 2 {
		t.Errorf("ack ran %d times for two firings (a wait that times out must not ack)", n)
	}
}

func TestSharedLineWaiterLeavingHandsTheLineOver(t *testing.T) {
	line := make(chanLine, 1)
	s := NewSharedLine(line, 2, func() uint32 { return InterruptUsedBuffer })
	// Interrupt 0 takes the line, interrupt 1 waits behind it, then
	// interrupt 0 gives up.
	c, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	first := make(chan error, 1)
	go func() { first <- s.Interrupt(0).Wait(c) }()
	for on := false; !on; {
		s.mu.Lock()
		on = s.onLine
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	got := make(chan error, 1)
	go func() { got <- s.Interrupt(1).Wait(context.Background()) }()
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupt 0: %v", err)
	}
	// Interrupt 1 must now be on the line and see the firing.
	line <- struct{}{}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("interrupt 1 never woke: nobody took the line over")
	}
}
