package virtionet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/govirtio/govirtio/virtqueue"
)

// Control-queue classes and commands (virtio 1.2 §5.1.6.5).
const (
	ctrlClassRx       = 0 // VIRTIO_NET_CTRL_RX
	ctrlRxPromisc     = 0 // VIRTIO_NET_CTRL_RX_PROMISC
	ctrlRxAllMulti    = 1 // VIRTIO_NET_CTRL_RX_ALLMULTI
	ctrlClassAnnounce = 3 // VIRTIO_NET_CTRL_ANNOUNCE
	ctrlAnnounceAck   = 0 // VIRTIO_NET_CTRL_ANNOUNCE_ACK
	ctrlOK            = 0 // VIRTIO_NET_OK
)

// ctrlTimeout bounds how long a control command may take.
const ctrlTimeout = 2 * time.Second

// ErrCtrl is wrapped by every control-queue failure.
var ErrCtrl = errors.New("virtionet: control command failed")

// errCtrlAbandoned is returned once a command was given up while the
// device still held its chain: the one command buffer cannot be reused.
var errCtrlAbandoned = errors.New("control queue abandoned: an earlier command did not complete")

// ctrlQueue sends control commands, one at a time.
type ctrlQueue struct {
	mu      sync.Mutex                      // serializes commands
	q       virtqueue.Queue                 // the control virtqueue
	mem     []byte                          // command buffer in DMA memory: class, cmd, data, then the ack byte
	phys    uint64                          // physical address of mem
	notify  func()                          // notifies the device; set by Open
	wait    func(ctx context.Context) error // waits for the control queue's interrupt; set by Open
	faulted func()                          // told when the queue breaks; set by Open (Device.requestReset)
	c       *counters                       // shared counters
	// broken is set when a command was given up with its chain still in
	// flight, or the device broke the ring: a late completion would act on
	// the next command's bytes in the shared buffer, so no command is sent
	// after it, until the device reset that breaking asks for (recover
	// clears it).
	broken bool
}

func newCtrlQueue(q virtqueue.Queue, dma virtqueue.DMA, c *counters) (*ctrlQueue, error) {
	mem, phys, err := dma.Alloc(64, 64)
	if err != nil {
		return nil, fmt.Errorf("virtionet: allocating the control buffer: %w", err)
	}
	return &ctrlQueue{q: q, mem: mem, phys: phys, c: c, notify: func() {}, faulted: func() {}}, nil
}

// command sends class/cmd with data and waits for the device's ack.
func (cq *ctrlQueue) command(ctx context.Context, class, cmd uint8, data []byte) error {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.broken {
		cq.c.ctrlErrors.Add(1)
		return fmt.Errorf("%w: class %d cmd %d: %w", ErrCtrl, class, cmd, errCtrlAbandoned)
	}
	if len(data) > len(cq.mem)-3 {
		return fmt.Errorf("%w: %d bytes of data", ErrCtrl, len(data))
	}
	cq.mem[0], cq.mem[1] = class, cmd
	copy(cq.mem[2:], data)
	ackOff := 2 + len(data)
	cq.mem[ackOff] = 0xff
	bufs := []virtqueue.Buffer{{Addr: cq.phys, Len: 2}}
	if len(data) > 0 {
		bufs = append(bufs, virtqueue.Buffer{Addr: cq.phys + 2, Len: uint32(len(data))})
	}
	bufs = append(bufs, virtqueue.Buffer{Addr: cq.phys + uint64(ackOff), Len: 1, Writable: true})
	head, err := cq.q.Add(bufs)
	if err != nil {
		cq.c.ctrlErrors.Add(1)
		return fmt.Errorf("%w: class %d cmd %d: %w", ErrCtrl, class, cmd, err)
	}
	if cq.q.Kick() {
		cq.notify()
	}
	ctx, cancel := context.WithTimeout(ctx, ctrlTimeout)
	defer cancel()
	for {
		h, _, ok, err := cq.q.Pop()
		if err == nil && ok && h != head {
			err = fmt.Errorf("used id %d, but only %d is in flight", h, head)
		}
		if err != nil {
			// The device broke the ring (the queue validated what it
			// could); nothing it returns can be trusted any more.
			cq.c.ctrlErrors.Add(1)
			cq.broken = true
			cq.faulted()
			return fmt.Errorf("%w: class %d cmd %d: %w", ErrCtrl, class, cmd, err)
		}
		if ok {
			if ack := cq.mem[ackOff]; ack != ctrlOK {
				cq.c.ctrlErrors.Add(1)
				return fmt.Errorf("%w: class %d cmd %d: device answered %d", ErrCtrl, class, cmd, ack)
			}
			cq.c.ctrlCommands.Add(1)
			return nil
		}
		if pending := cq.q.EnableInterrupts(); pending {
			continue
		}
		if err := cq.wait(ctx); err != nil {
			// The chain stays in flight (it is reclaimed at reset), and
			// with it the command buffer.
			cq.c.ctrlErrors.Add(1)
			cq.broken = true
			if ctx.Err() == context.DeadlineExceeded {
				cq.faulted() // the device sat on it: a reset takes the chain back
			}
			return fmt.Errorf("%w: class %d cmd %d: %w", ErrCtrl, class, cmd, err)
		}
	}
}

// setRxMode turns promiscuous (and all-multicast) reception on or off.
func (cq *ctrlQueue) setRxMode(ctx context.Context, promisc bool) error {
	on := []byte{0}
	if promisc {
		on[0] = 1
	}
	if err := cq.command(ctx, ctrlClassRx, ctrlRxPromisc, on); err != nil {
		return err
	}
	return cq.command(ctx, ctrlClassRx, ctrlRxAllMulti, on)
}

// ackAnnounce tells the device the announcement was made, which clears
// StatusAnnounce (virtio 1.2 §5.1.6.5.4).
func (cq *ctrlQueue) ackAnnounce(ctx context.Context) error {
	return cq.command(ctx, ctrlClassAnnounce, ctrlAnnounceAck, nil)
}

// detachLocked takes back a command chain the device still held, after a
// reset, so the queue can be reset; the queue is usable again. The caller
// holds mu.
func (cq *ctrlQueue) detachLocked() {
	for {
		if _, ok := cq.q.DetachUnused(); !ok {
			break
		}
	}
	cq.broken = false
}
