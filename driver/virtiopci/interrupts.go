package virtiopci

import (
	"errors"
	"fmt"

	"github.com/govirtio/govirtio/driver/virtio"
)

// Interrupts implements virtio.Transport. With MSI-X (the function has it,
// the platform allocates vectors and the device accepts every vector)
// configuration changes get vector 0 and queue i gets vector i+1, each its
// own Interrupt; when the MSI-X table is smaller than n+1 entries, the
// queues share vector 1 and each of their Interrupts fires when it does.
// Otherwise it falls back to INTx: every Interrupt shares the line, the
// one waiting on the line reads the ISR register to acknowledge the device,
// and the queues fire on ISR bit 0, the configuration on bit 1.
//
// Call it once, before SetupQueue (a modern queue's vector must be in
// place before the queue is enabled), normally after virtio.Negotiate.
// The assignment survives resets: the transport writes the vectors again
// as queues are set up. A second call replaces the assignment (and must
// not race with Waits on the first one's Interrupts); MSI-X vectors
// allocated by an earlier call are reused.
func (t *Transport) Interrupts(n int) (queues []virtio.Interrupt, config virtio.Interrupt, err error) {
	if n < 0 || n > t.nqueues {
		return nil, nil, fmt.Errorf("virtiopci: %v: %d queue interrupts for %d queues: %w", t.dev, n, t.nqueues, ErrBadQueue)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for q := range n {
		if t.b.queueEnabled(q) {
			// Its vector can no longer be written (virtio 1.2
			// §4.1.4.3.2): a driver bug, not a reason for INTx.
			return nil, nil, fmt.Errorf("virtiopci: %v: Interrupts after queue %d was enabled: %w", t.dev, q, ErrBadQueue)
		}
	}
	t.vectorsStale = false

	var msixErr error
	if t.msix != nil && t.plat.MSI != nil && !t.opts.NoMSIX {
		queues, config, msixErr = t.setupMSIX(n)
		if msixErr == nil {
			return queues, config, nil
		}
		t.stats.msixFallbacks.Add(1)
		t.teardownMSIX(n)
	}
	queues, config, err = t.setupINTx(n)
	if err != nil {
		return nil, nil, fmt.Errorf("virtiopci: %v: %w", t.dev, errors.Join(msixErr, err))
	}
	t.mode = "intx"
	return queues, config, nil
}

// msiVector is one vector from the platform's MSIAllocator.
type msiVector struct {
	// addr and data are the message the device sends.
	addr uint64
	data uint32
	// irq is what a goroutine waits on.
	irq virtio.Interrupt
}

// vectors returns n platform vectors, allocating only those an earlier
// call did not. Called with t.mu held.
func (t *Transport) vectors(n int) ([]msiVector, error) {
	for len(t.msiVectors) < n {
		addr, data, irq, err := t.plat.MSI.AllocMSI()
		if err != nil {
			return nil, fmt.Errorf("MSI-X vector %d: %w", len(t.msiVectors), err)
		}
		t.msiVectors = append(t.msiVectors, msiVector{addr: addr, data: data, irq: irq})
	}
	return t.msiVectors[:n], nil
}

// setupMSIX programs one vector for configuration changes and one per
// queue, or one shared by every queue when the table is too small. Called
// with t.mu held.
func (t *Transport) setupMSIX(n int) ([]virtio.Interrupt, virtio.Interrupt, error) {
	x := t.msix
	need, shared := n+1, false
	if x.TableSize < need {
		if x.TableSize < 2 || n == 0 {
			return nil, nil, fmt.Errorf("MSI-X table of %d entries for %d queues and config: %w", x.TableSize, n, ErrNoInterrupt)
		}
		need, shared = 2, true
	}
	if err := x.Map(t.plat.Mapper); err != nil {
		return nil, nil, fmt.Errorf("MSI-X: %w", err)
	}
	vecs, err := t.vectors(need)
	if err != nil {
		return nil, nil, err
	}
	for i, v := range vecs {
		if err := x.SetEntry(i, v.addr, v.data, false); err != nil {
			return nil, nil, fmt.Errorf("MSI-X vector %d: %w", i, err)
		}
	}
	// Enable with the function masked while the device is told its
	// vectors; on the legacy layout enabling also makes the vector
	// registers appear and moves the device configuration.
	x.SetFunctionMask(true)
	x.SetEnabled(true)
	t.b.msixChanged(true)
	if got := t.b.setConfigVector(0); got != 0 {
		return nil, nil, fmt.Errorf("config vector 0 read back %#x: %w", got, ErrVectorRejected)
	}
	t.configVector = 0
	for q := 0; q < n; q++ {
		v := uint16(q + 1)
		if shared {
			v = 1
		}
		if got := t.b.setQueueVector(q, v); got != v {
			return nil, nil, fmt.Errorf("queue %d vector %d read back %#x: %w", q, v, got, ErrVectorRejected)
		}
		t.queueVectors[q] = v
	}
	x.SetFunctionMask(false)

	queues := make([]virtio.Interrupt, n)
	if shared {
		// No ISR to read: the vector itself says "a queue".
		s := virtio.NewSharedLine(vecs[1].irq, n, func() uint32 { return virtio.InterruptUsedBuffer })
		for q := range queues {
			queues[q] = s.Interrupt(q)
		}
		t.mode = "msix-shared"
	} else {
		for q := range queues {
			queues[q] = vecs[q+1].irq
		}
		t.mode = "msix"
	}
	return queues, vecs[0].irq, nil
}

// teardownMSIX undoes a partial setupMSIX. Called with t.mu held.
func (t *Transport) teardownMSIX(n int) {
	x := t.msix
	if x.Enabled() {
		t.b.setConfigVector(noVector)
		for q := 0; q < n; q++ {
			t.b.setQueueVector(q, noVector)
		}
	}
	for q := range t.queueVectors {
		t.queueVectors[q] = noVector
	}
	t.configVector = noVector
	x.SetEnabled(false)
	x.SetFunctionMask(false)
	t.b.msixChanged(false)
	t.dev.SetINTx(true)
}

// setupINTx shares the function's interrupt line among every queue and the
// configuration. Called with t.mu held.
func (t *Transport) setupINTx(n int) ([]virtio.Interrupt, virtio.Interrupt, error) {
	if t.plat.Lines == nil {
		return nil, nil, fmt.Errorf("INTx: no line interrupts on this platform: %w", ErrNoInterrupt)
	}
	if t.dev.InterruptPin == 0 {
		return nil, nil, fmt.Errorf("INTx: function has no interrupt pin: %w", ErrNoInterrupt)
	}
	line, err := t.plat.Lines.LineInterrupt(t.dev.InterruptLine)
	if err != nil {
		return nil, nil, fmt.Errorf("INTx line %d: %w", t.dev.InterruptLine, err)
	}
	t.dev.SetINTx(true)
	s := virtio.NewSharedLine(line, n+1, func() uint32 { return uint32(t.ackINTx(line)) })
	s.SetBits(n, virtio.InterruptConfig)
	queues := make([]virtio.Interrupt, n)
	for q := range queues {
		queues[q] = s.Interrupt(q)
	}
	return queues, s.Interrupt(n), nil
}

// ackINTx reads (and so clears) the ISR after the line fired, which
// deasserts the device's INTx, counts what it saw, and unmasks the line if
// the platform wants to be told (Rearmer).
func (t *Transport) ackINTx(line virtio.Interrupt) uint8 {
	isr := t.b.isr()
	t.stats.lineInterrupts.Add(1)
	if isr == 0 {
		t.stats.spuriousLine.Add(1)
	}
	if r, ok := line.(Rearmer); ok {
		if err := r.Rearm(); err != nil {
			t.stats.rearmErrors.Add(1)
		}
	}
	return isr
}
