package virtionet

import (
	"fmt"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
)

// Recovery. A device that finds an error it cannot go on from (QEMU's
// virtio_error: a malformed chain, an index out of range) stops and sets
// DEVICE_NEEDS_RESET, with a configuration interrupt on a modern
// interface (virtio 1.2 §2.1.1, §2.1.2). A device that breaks the used
// ring (an id out of range or not in flight, used.idx jumping) leaves the
// buffers behind the bad entries posted and out of reach. In both cases
// the queues cannot be trusted any more, so the driver resets the device,
// takes every buffer back, negotiates the same features again, sets the
// same queues up, refills and carries on, under the same link endpoint:
// netstack keeps its NIC and its connections, and TCP retransmits what was
// lost with the rings. Linux's virtio_net marks such a queue broken and
// stops using the device until it is unbound; a unikernel has no one to
// rebind it.

// Recoveries that follow each other within recoveryWindow are spaced by a
// wait that doubles each time, from minRecoveryWait to maxRecoveryWait, so
// that a device that fails again at once is not reset in a tight loop.
const (
	recoveryWindow  = time.Minute
	minRecoveryWait = 10 * time.Millisecond
	maxRecoveryWait = 10 * time.Second
)

// InjectTxFault posts a malformed chain on the TX queue: one
// device-writable buffer where a transmit chain must begin with the
// device-readable virtio header. A conforming device stops on it: QEMU's
// virtio-net sets DEVICE_NEEDS_RESET (modern interface) and interrupts, and
// the driver resets and recovers. It exists so that tests can exercise
// that recovery against a real device; nothing else should call it.
func (d *Device) InjectTxFault() error { return d.tx.postFault() }

// requestReset asks the recovery loop for a device reset. It never blocks;
// requests made while one is pending merge into it.
func (d *Device) requestReset() { signal(d.resetReq) }

// logf reports a rare event through Options.Logf.
func (d *Device) logf(format string, args ...any) {
	if d.opts.Logf != nil {
		d.opts.Logf(format, args...)
	}
}

// recoveryLoop resets and restarts the device each time it is asked to.
// When the device cannot be brought back it is marked FAILED and the loop
// ends: the driver then drops what it is given (TxDropFailed).
func (d *Device) recoveryLoop() {
	defer d.wg.Done()
	wait := minRecoveryWait
	var last time.Time
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.resetReq:
		}
		if !last.IsZero() {
			if time.Since(last) < recoveryWindow {
				wait = min(2*wait, maxRecoveryWait)
			} else {
				wait = minRecoveryWait
			}
			t := time.NewTimer(wait - time.Since(last))
			select {
			case <-d.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		d.setLink(false)
		if err := d.recover(); err != nil {
			d.c.recoveryFailures.Add(1)
			d.logf("virtionet: the device could not be recovered, giving up on it: %v", err)
			return
		}
		d.c.recoveries.Add(1)
		if d.ctrl != nil && d.features&FeatureCtrlRx != 0 && d.opts.Promiscuous {
			// The reset forgot the receive mode.
			if err := d.ctrl.setRxMode(d.ctx, true); err != nil {
				d.logf("virtionet: after the reset: %v", err)
			}
		}
		d.logf("virtionet: the device is running again after reset %d (%v)", d.c.recoveries.Load(), time.Since(last).Round(time.Microsecond))
	}
}

// recover resets the device and brings it back with the features and
// queues it had. It holds every ring while it works: the control queue
// first (a command in progress finishes or times out), then the RX loop's
// lock and the TX lock, in the order the RX path takes them (a delivered
// packet may be answered from within the RX loop). On failure the device is
// left FAILED and the driver stops using it.
func (d *Device) recover() (err error) {
	if d.ctrl != nil {
		d.ctrl.mu.Lock()
		defer d.ctrl.mu.Unlock()
	}
	d.rxMu.Lock()
	defer d.rxMu.Unlock()
	d.tx.mu.Lock()
	defer d.tx.mu.Unlock()
	// Requests made before this point are answered by this reset.
	select {
	case <-d.resetReq:
	default:
	}
	defer func() {
		if err != nil {
			d.failed.Store(true)
			d.tx.dead = true
			virtio.Fail(d.t)
		}
	}()

	st := d.t.Status()
	why := "a used-ring violation"
	if st&virtio.StatusNeedsReset != 0 {
		why = "DEVICE_NEEDS_RESET"
	}
	d.logf("virtionet: resetting the device after %s (status %#02x)", why, st)
	if err := d.t.Reset(); err != nil {
		// The device may still write into what it holds: keep it all.
		d.c.resetFailures.Add(1)
		return fmt.Errorf("virtionet: reset: %w", err)
	}
	d.rx.Detach()
	d.tx.detachLocked()
	if d.ctrl != nil {
		d.ctrl.detachLocked()
	}

	features, err := virtio.Negotiate(d.t, d.supports, d.mask, featureDeps...)
	if err != nil {
		return fmt.Errorf("virtionet: after a reset: %w", err)
	}
	if features != d.features {
		// Header layout, ring formats and buffer sizes follow from the
		// features: the rings cannot simply carry on with others.
		return fmt.Errorf("virtionet: after a reset the device accepts features %#x, not %#x", features, d.features)
	}
	for i, q := range d.queues {
		if err := q.Reset(); err != nil {
			return fmt.Errorf("virtionet: queue %d: %w", i, err)
		}
		if err := d.giveQueue(i, q); err != nil {
			return fmt.Errorf("virtionet: after a reset: %w", err)
		}
	}
	d.tx.restartLocked()
	if err := d.goLive(); err != nil {
		return fmt.Errorf("virtionet: after a reset: %w", err)
	}
	d.setLink(readStatus(d.t, d.features)&StatusLinkUp != 0)
	return nil
}
