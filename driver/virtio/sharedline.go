package virtio

import (
	"context"
	"sync"
)

// Interrupt status bits: the same two bits in virtio over PCI's ISR status
// (virtio 1.2 §4.1.4.5) and virtio-mmio's InterruptStatus (§4.2.2).
const (
	InterruptUsedBuffer uint32 = 1 << 0 // a queue has used buffers
	InterruptConfig     uint32 = 1 << 1 // the device configuration changed
)

// SharedLine spreads one platform interrupt (a PCI INTx line, an MSI-X
// vector the queues share, a virtio-mmio device's line) over several
// Interrupts, one per queue and one for the configuration. It has no
// goroutine of its own: whichever waiter finds nobody waiting on the line
// waits on it, calls ack (which reads and acknowledges the device's
// interrupt status), marks pending the Interrupts whose bits the status
// holds, and wakes the other waiters, one of which takes the line over if
// its waiter leaves.
type SharedLine struct {
	// line is the platform's interrupt.
	line Interrupt
	// ack acknowledges the device and returns its interrupt status bits.
	ack func() uint32

	// mu guards the fields below.
	mu sync.Mutex
	// onLine is set while a waiter is inside line.Wait.
	onLine bool
	// wake is closed (and replaced) each time the line waiter returns.
	wake chan struct{}
	// pending holds, per Interrupt, a firing not yet returned by Wait.
	pending []bool
	// bits holds, per Interrupt, the status bits that concern it.
	bits []uint32
}

// NewSharedLine returns a SharedLine of n Interrupts on line, each
// concerned by InterruptUsedBuffer until SetBits says otherwise. ack runs
// each time the line fires, before any waiter is woken.
func NewSharedLine(line Interrupt, n int, ack func() uint32) *SharedLine {
	s := &SharedLine{line: line, ack: ack, wake: make(chan struct{}), pending: make([]bool, n), bits: make([]uint32, n)}
	for i := range s.bits {
		s.bits[i] = InterruptUsedBuffer
	}
	return s
}

// SetBits says which status bits fire Interrupt i. Call it before any Wait.
func (s *SharedLine) SetBits(i int, bits uint32) {
	s.mu.Lock()
	s.bits[i] = bits
	s.mu.Unlock()
}

// Interrupt returns Interrupt i (0 <= i < n).
func (s *SharedLine) Interrupt(i int) Interrupt { return &sharedInterrupt{s: s, idx: i} }

// sharedInterrupt is one Interrupt of a SharedLine.
type sharedInterrupt struct {
	// s is the line.
	s *SharedLine
	// idx is this interrupt's slot in s.pending and s.bits.
	idx int
}

// Wait implements Interrupt.
func (si *sharedInterrupt) Wait(ctx context.Context) error {
	s := si.s
	for {
		s.mu.Lock()
		if s.pending[si.idx] {
			s.pending[si.idx] = false
			s.mu.Unlock()
			return nil
		}
		if !s.onLine {
			s.onLine = true
			s.mu.Unlock()
			err := s.line.Wait(ctx)
			var status uint32
			if err == nil {
				status = s.ack()
			}
			s.mu.Lock()
			s.onLine = false
			for i, b := range s.bits {
				if status&b != 0 {
					s.pending[i] = true
				}
			}
			close(s.wake)
			s.wake = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
