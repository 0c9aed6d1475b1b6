package virtiommio

import (
	"fmt"

	"github.com/govirtio/govirtio/driver/virtio"
)

// Interrupts implements virtio.Transport. The device has one line: every
// queue's Interrupt and the configuration's share it. The first call asks
// the platform for the line (I/O APIC input Device.IRQ); later calls reuse
// it with a new fan-out (and must not race with Waits on the earlier
// Interrupts). The line survives resets.
func (t *Transport) Interrupts(n int) (queues []virtio.Interrupt, config virtio.Interrupt, err error) {
	if n < 0 || n > t.nqueues {
		return nil, nil, fmt.Errorf("virtiommio: %v: %d queue interrupts for %d queues: %w", t.dev, n, t.nqueues, ErrBadQueue)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line == nil {
		if t.plat.Lines == nil {
			return nil, nil, fmt.Errorf("virtiommio: %v: no line interrupts on this platform: %w", t.dev, ErrNoInterrupt)
		}
		line, err := t.plat.Lines.LineInterrupt(t.dev.IRQ)
		if err != nil {
			return nil, nil, fmt.Errorf("virtiommio: %v: line %d: %w: %w", t.dev, t.dev.IRQ, ErrNoInterrupt, err)
		}
		t.line = line
	}
	s := virtio.NewSharedLine(t.line, n+1, t.acknowledge)
	s.SetBits(n, virtio.InterruptConfig)
	queues = make([]virtio.Interrupt, n)
	for q := range queues {
		queues[q] = s.Interrupt(q)
	}
	return queues, s.Interrupt(n), nil
}

// acknowledge runs after the line fired: it reads InterruptStatus, writes
// the bits back to InterruptACK (which lowers the level-triggered line
// once no bit is left), counts, and unmasks the line if the platform wants
// to be told. Bits beyond the two the layout defines are acknowledged too,
// or a device setting them would hold the line up forever.
func (t *Transport) acknowledge() uint32 {
	isr := t.r.Read32(regInterruptStatus)
	if isr != 0 {
		t.r.Write32(regInterruptACK, isr)
	}
	t.stats.lineInterrupts.Add(1)
	if isr&(virtio.InterruptUsedBuffer|virtio.InterruptConfig) == 0 {
		t.stats.spuriousLine.Add(1)
	}
	if r, ok := t.line.(Rearmer); ok {
		if err := r.Rearm(); err != nil {
			t.stats.rearmErrors.Add(1)
		}
	}
	return isr
}
