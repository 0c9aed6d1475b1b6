package virtionet

import (
	"context"

	"github.com/govirtio/govirtio/driver/virtio"
)

// sameInterrupt compares two interrupts; transports return the same value
// for queues that share a line. Values of uncomparable types are distinct.
func sameInterrupt(a, b virtio.Interrupt) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// wakeup is how one loop learns that its source may have work: its own
// interrupt when it has one to itself (MSI-X gives each queue its vector),
// waited on directly, which saves a goroutine switch per interrupt; else a
// signal on ch from the waiter of the line it shares (INTx).
type wakeup struct {
	ch  chan struct{}    // one slot, signalled by a shared line's waiter
	irq virtio.Interrupt // the loop's own interrupt, or nil; set by startInterrupts
}

func newWakeup() wakeup { return wakeup{ch: make(chan struct{}, 1)} }

// wait blocks until the loop should look at its queue again. It returns
// ctx's error when ctx is done first. Only the wakeup's loop calls it.
func (w *wakeup) wait(ctx context.Context) error {
	if w.irq != nil {
		return w.irq.Wait(ctx)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.ch:
		return nil
	}
}

// startInterrupts gives each source's loop (wakes[i], for irqs[i]) its
// interrupt when nothing else uses it, and starts a waiter goroutine per
// shared line that wakes every loop on it; each then polls its own ring.
func (d *Device) startInterrupts(irqs []virtio.Interrupt, wakes []*wakeup) {
	type line struct {
		irq   virtio.Interrupt
		wakes []*wakeup
	}
	var lines []*line
next:
	for i, irq := range irqs {
		if irq == nil {
			// No interrupt for this source: its loop is woken only by
			// its own polling (the RX and TX loops re-check the ring).
			continue
		}
		for _, l := range lines {
			if sameInterrupt(l.irq, irq) {
				l.wakes = append(l.wakes, wakes[i])
				continue next
			}
		}
		lines = append(lines, &line{irq: irq, wakes: []*wakeup{wakes[i]}})
	}
	for _, l := range lines {
		if len(l.wakes) == 1 {
			l.wakes[0].irq = l.irq
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for d.ctx.Err() == nil {
				if err := l.irq.Wait(d.ctx); err != nil {
					return
				}
				for _, w := range l.wakes {
					signal(w.ch)
				}
			}
		}()
	}
}

// signal sets a one-slot wake channel without blocking.
func signal(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}

// rxLoop is the receive side's NAPI-style loop: with interrupts
// suppressed, drain the used ring and refill; re-enable interrupts, and
// drain again if entries arrived meanwhile; then sleep until the next
// interrupt.
func (d *Device) rxLoop() {
	defer d.wg.Done()
	for {
		// recover holds rxMu while it resets and refills the ring.
		d.rxMu.Lock()
		d.rx.Service(defaultRxBudget, d.failed.Load)
		d.rxMu.Unlock()
		if d.rxWake.wait(d.ctx) != nil {
			return
		}
		d.c.rxInterrupts.Add(1)
	}
}

// txLoop releases transmitted packets when the device interrupts, which it
// does only while a writer waits for room in a full ring (waitSpace turns
// the interrupts on); that writer is then signalled through space.
func (d *Device) txLoop() {
	defer d.wg.Done()
	for {
		if d.txWake.wait(d.ctx) != nil {
			return
		}
		d.c.txInterrupts.Add(1)
		d.tx.ReleaseSent()
	}
}

// setLink records the link state and reports a change to
// Options.OnLinkChange. The config loop calls it as the device reports the
// link, and the recovery loop around a reset, during which no traffic
// passes.
func (d *Device) setLink(up bool) {
	if d.linkUp.Swap(up) == up {
		return
	}
	d.c.linkChanges.Add(1)
	if d.opts.OnLinkChange != nil {
		d.opts.OnLinkChange(up)
	}
}

// waitCtrl waits for the control queue's interrupt.
func (d *Device) waitCtrl(ctx context.Context) error { return d.ctrlWake.wait(ctx) }

// configLoop follows the config status (link state and announce
// requests) and the device status: DEVICE_NEEDS_RESET, which a device sets
// (with a configuration interrupt) when it stops on an error it found,
// hands the device to the recovery loop.
func (d *Device) configLoop() {
	defer d.wg.Done()
	for {
		if d.cfgWake.wait(d.ctx) != nil {
			return
		}
		d.c.configInterrupts.Add(1)
		if d.t.Status()&virtio.StatusNeedsReset != 0 {
			d.c.needsReset.Add(1)
			d.requestReset()
			continue
		}
		st := readStatus(d.t, d.features)
		d.setLink(st&StatusLinkUp != 0)
		if st&StatusAnnounce != 0 && d.ctrl != nil && d.features&FeatureGuestAnnounce != 0 {
			if d.opts.OnAnnounce != nil {
				d.opts.OnAnnounce()
			}
			if err := d.ctrl.ackAnnounce(d.ctx); err == nil {
				d.c.announces.Add(1)
			}
		}
	}
}
