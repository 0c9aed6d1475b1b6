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

// startInterrupts starts one waiter per distinct interrupt; each firing
// wakes every loop whose queue uses that interrupt (a shared INTx line
// wakes them all, and each polls its own ring).
func (d *Device) startInterrupts(irqs []virtio.Interrupt, wakes [][]chan struct{}) {
	type line struct {
		irq   virtio.Interrupt
		wakes []chan struct{}
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
				l.wakes = append(l.wakes, wakes[i]...)
				continue next
			}
		}
		lines = append(lines, &line{irq: irq, wakes: append([]chan struct{}(nil), wakes[i]...)})
	}
	for _, l := range lines {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for d.ctx.Err() == nil {
				if err := l.irq.Wait(d.ctx); err != nil {
					return
				}
				for _, w := range l.wakes {
					signal(w)
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
	q := d.rx.q
	for {
		for {
			q.DisableInterrupts()
			for d.rx.Poll(defaultRxBudget) > 0 {
				d.rx.Refill()
			}
			d.rx.Refill()
			if !q.EnableInterrupts() {
				break
			}
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.rxWake:
			d.c.rxInterrupts.Add(1)
		}
	}
}

// txLoop releases transmitted packets when the device interrupts, which it
// does only while a writer waits for room in a full ring (waitSpace turns
// the interrupts on); that writer is then signalled through space.
func (d *Device) txLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.txWake:
			d.c.txInterrupts.Add(1)
		}
		d.tx.Reclaim()
	}
}

// waitCtrl waits for the control queue's interrupt.
func (d *Device) waitCtrl(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-d.ctrlWake:
		return nil
	}
}

// configLoop follows the config status: link state and announce requests.
func (d *Device) configLoop(last uint16) {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.cfgWake:
			d.c.configInterrupts.Add(1)
		}
		st := readStatus(d.t, d.features)
		if (st^last)&StatusLinkUp != 0 {
			up := st&StatusLinkUp != 0
			d.linkUp.Store(up)
			d.c.linkChanges.Add(1)
			if d.opts.OnLinkChange != nil {
				d.opts.OnLinkChange(up)
			}
		}
		last = st
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
