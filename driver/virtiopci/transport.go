package virtiopci

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/pci"
)

// Errors, matched with errors.Is.
var (
	// ErrNotVirtio: the PCI function is not a virtio device.
	ErrNotVirtio = errors.New("virtiopci: not a virtio device")
	// ErrBadDevice: the device's registers or capabilities are
	// inconsistent (a structure outside its BAR, a missing required
	// structure, a notify offset past the notify region...).
	ErrBadDevice = errors.New("virtiopci: device violates the virtio PCI layout")
	// ErrResetTimeout: the device status did not read back 0 after reset.
	ErrResetTimeout = errors.New("virtiopci: device did not complete reset")
	// ErrBadQueue: a queue index, size or address the device or the
	// layout cannot take.
	ErrBadQueue = errors.New("virtiopci: bad queue setup")
	// ErrVectorRejected: the device read back VIRTIO_MSI_NO_VECTOR for an
	// MSI-X vector it was given (virtio 1.2 §4.1.5.1.2.1).
	ErrVectorRejected = errors.New("virtiopci: device rejected MSI-X vector")
	// ErrNoInterrupt: neither MSI-X nor INTx can be used.
	ErrNoInterrupt = errors.New("virtiopci: no usable interrupt")
)

// noVector is VIRTIO_MSI_NO_VECTOR: no MSI-X vector for this source.
const noVector uint16 = 0xFFFF

// The ISR status bits (virtio 1.2 §4.1.4.5) are virtio.InterruptUsedBuffer
// and virtio.InterruptConfig, shared with virtio-mmio.

// Options adjust Open.
type Options struct {
	// ForceLegacy uses the legacy interface of a transitional device even
	// when it has the modern capabilities.
	ForceLegacy bool
	// NoMSIX uses INTx even when MSI-X is available.
	NoMSIX bool
	// ResetTimeout bounds how long Reset waits for the status to read 0;
	// zero means one second.
	ResetTimeout time.Duration
	// MaxConfigRetries bounds how many times ReadConfig rereads when the
	// configuration generation changes under it; zero means 64.
	MaxConfigRetries int
}

// Stats counts what the transport saw. Read it with Transport.Stats.
type Stats struct {
	// ConfigRetries counts ReadConfig rereads because the generation
	// changed during a read.
	ConfigRetries uint64
	// ConfigUnstable counts ReadConfig calls that gave up after
	// MaxConfigRetries and returned possibly torn data.
	ConfigUnstable uint64
	// ConfigOutOfRange counts ReadConfig/WriteConfig calls past the
	// device configuration the device exposes (read as zeros, writes
	// dropped).
	ConfigOutOfRange uint64
	// NotifyBadQueue counts Notify calls for a queue that is not set up.
	NotifyBadQueue uint64
	// LineInterrupts counts INTx interrupts taken; SpuriousLine those
	// whose ISR read 0 (the line is shared, or the device is slow).
	LineInterrupts uint64
	SpuriousLine   uint64
	// MSIXFallbacks counts MSI-X setups abandoned for INTx.
	MSIXFallbacks uint64
	// RearmErrors counts failures to unmask the INTx line (Rearmer).
	RearmErrors uint64
}

// counters are the live Stats.
type counters struct {
	configRetries, configUnstable, configOutOfRange, notifyBadQueue atomic.Uint64
	lineInterrupts, spuriousLine, msixFallbacks, rearmErrors        atomic.Uint64
}

// backend is one register layout: legacy or modern.
type backend interface {
	legacy() bool
	deviceFeatures() uint64
	setDriverFeatures(f uint64)
	status() uint8
	setStatus(s uint8)
	// readConfig and writeConfig are bounds-checked by the caller against
	// configSize.
	readConfig(off int, b []byte)
	writeConfig(off int, b []byte)
	configSize() int
	// generation is the configuration generation; the legacy layout has
	// none and returns 0.
	generation() uint8
	numQueues() int
	queueMaxSize(q int) int
	setupQueue(q, size int, desc, avail, used uint64, vector uint16) error
	notify(q int) bool
	isr() uint8
	// queueEnabled reports whether queue q is enabled (modern: queue_enable
	// reads 1; the legacy layout has no such state and reports false).
	queueEnabled(q int) bool
	// setConfigVector and setQueueVector write an MSI-X vector and return
	// what the device reads back.
	setConfigVector(v uint16) uint16
	setQueueVector(q int, v uint16) uint16
	// msixChanged tells the layout that MSI-X was enabled or disabled
	// (the legacy device configuration moves).
	msixChanged(on bool)
	// reset forgets queue state after a device reset.
	reset()
}

// Transport is virtio.Transport over a PCI function.
type Transport struct {
	// dev is the PCI function.
	dev *pci.Device
	// plat is how the machine is reached.
	plat Platform
	// opts are the options Open was given, defaults filled in.
	opts Options
	// b is the register layout in use.
	b backend
	// msix is the function's MSI-X capability; nil when absent or
	// unusable.
	msix *pci.MSIX
	// nqueues is NumQueues, read once at Open.
	nqueues int

	// mu serializes register sequences that go through a select
	// register (features, queue setup, vectors) and guards the fields
	// below. Notify, status and ISR accesses do not take it.
	mu sync.Mutex
	// queueVectors are the MSI-X vectors assigned to queues by
	// Interrupts, written again when a queue is set up (a modern queue's
	// vector must be in place before queue_enable, and a reset clears the
	// device's copy).
	queueVectors []uint16
	// configVector is the MSI-X vector assigned to configuration changes,
	// noVector without MSI-X.
	configVector uint16
	// vectorsStale is set by Reset, which clears the device's vector
	// assignments: the next SetupQueue writes the configuration vector
	// again (queue vectors are written by each SetupQueue).
	vectorsStale bool
	// mode says how interrupts are delivered: "", "msix",
	// "msix-shared" or "intx".
	mode string
	// msiVectors are the platform vectors allocated so far, reused by
	// later Interrupts calls (the platform cannot take them back).
	msiVectors []msiVector

	// stats are the counters.
	stats counters
}

var _ virtio.Transport = (*Transport)(nil)

// Open sets up the transport for a virtio function: it enables decoding
// and bus mastering, picks the modern interface when the capabilities are
// there (unless Options.ForceLegacy) and the legacy one otherwise, and maps
// the register regions. The device is not reset; virtio.Negotiate does
// that.
func Open(d *pci.Device, p Platform, o Options) (*Transport, error) {
	if _, ok := DeviceType(d); !ok {
		return nil, fmt.Errorf("virtiopci: %v: %w", d, ErrNotVirtio)
	}
	if o.ResetTimeout == 0 {
		o.ResetTimeout = time.Second
	}
	if o.MaxConfigRetries == 0 {
		o.MaxConfigRetries = 64
	}
	t := &Transport{dev: d, plat: p, opts: o, configVector: noVector}
	d.EnableDecode()
	d.EnableBusMaster()

	if x, err := d.MSIX(); err == nil {
		// Start from a known state: the legacy layout depends on it.
		x.SetEnabled(false)
		t.msix = x
	}

	var modernErr error
	if !o.ForceLegacy {
		m, err := openModern(d, p)
		if err == nil {
			t.b = m
		}
		modernErr = err
	}
	if t.b == nil {
		if !IsTransitional(d) {
			if modernErr == nil {
				return nil, fmt.Errorf("virtiopci: %v: legacy interface asked for on a modern-only device: %w", d, ErrBadDevice)
			}
			return nil, fmt.Errorf("virtiopci: %v: modern interface: %w", d, modernErr)
		}
		l, err := openLegacy(d, p)
		if err != nil {
			return nil, fmt.Errorf("virtiopci: %v: %w", d, errors.Join(modernErr, err))
		}
		t.b = l
	}
	t.nqueues = t.b.numQueues()
	t.queueVectors = make([]uint16, t.nqueues)
	for i := range t.queueVectors {
		t.queueVectors[i] = noVector
	}
	return t, nil
}

// Device returns the PCI function.
func (t *Transport) Device() *pci.Device { return t.dev }

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		ConfigRetries:    c.configRetries.Load(),
		ConfigUnstable:   c.configUnstable.Load(),
		ConfigOutOfRange: c.configOutOfRange.Load(),
		NotifyBadQueue:   c.notifyBadQueue.Load(),
		LineInterrupts:   c.lineInterrupts.Load(),
		SpuriousLine:     c.spuriousLine.Load(),
		MSIXFallbacks:    c.msixFallbacks.Load(),
		RearmErrors:      c.rearmErrors.Load(),
	}
}

// InterruptMode reports how interrupts are delivered once Interrupts has
// run: "msix" (a vector per queue), "msix-shared" (the queues share one
// vector) or "intx" ("" before).
func (t *Transport) InterruptMode() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mode
}

// Legacy implements virtio.Transport.
func (t *Transport) Legacy() bool { return t.b.legacy() }

// DeviceFeatures implements virtio.Transport.
func (t *Transport) DeviceFeatures() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.deviceFeatures()
}

// SetDriverFeatures implements virtio.Transport.
func (t *Transport) SetDriverFeatures(f uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.setDriverFeatures(f)
}

// Status implements virtio.Transport.
func (t *Transport) Status() uint8 { return t.b.status() }

// SetStatus implements virtio.Transport.
func (t *Transport) SetStatus(s uint8) { t.b.setStatus(s) }

// Reset implements virtio.Transport: it writes status 0 and waits, up to
// Options.ResetTimeout, for the device to read back 0 (virtio 1.2
// §4.1.4.3.2). A reset also drops the device's MSI-X vector assignments;
// the transport keeps its own and writes them again at the next
// SetupQueue, so the Interrupts returned before the reset stay valid.
func (t *Transport) Reset() error {
	t.b.setStatus(0)
	deadline := time.Now().Add(t.opts.ResetTimeout)
	for i := 0; ; i++ {
		s := t.b.status()
		if s == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("virtiopci: %v: status %#02x after %v: %w", t.dev, s, t.opts.ResetTimeout, ErrResetTimeout)
		}
		if i < 16 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.reset()
	t.vectorsStale = true
	return nil
}

// configRange checks [off, off+n) against the device configuration size.
func (t *Transport) configRange(off, n int) bool {
	if off < 0 || n < 0 || off+n > t.b.configSize() {
		t.stats.configOutOfRange.Add(1)
		return false
	}
	return true
}

// ReadConfig implements virtio.Transport. It rereads while the
// configuration changes under it, at most Options.MaxConfigRetries times,
// after which it counts ConfigUnstable and returns the last read. A modern
// device says so through the configuration generation (virtio 1.2
// §4.1.4.3.1); a legacy one has no generation, so a multi-byte read is
// repeated until two reads agree (§4.1.4.8). A range past the device
// configuration reads as zeros and is counted.
func (t *Transport) ReadConfig(off int, b []byte) {
	if !t.configRange(off, len(b)) {
		clear(b)
		return
	}
	legacy := t.b.legacy()
	var again [16]byte // fields are at most 8 bytes; longer reads are not compared
	for try := 0; ; try++ {
		g := t.b.generation()
		t.b.readConfig(off, b)
		stable := t.b.generation() == g
		if stable && legacy && len(b) > 1 && len(b) <= len(again) {
			t.b.readConfig(off, again[:len(b)])
			stable = string(again[:len(b)]) == string(b)
		}
		if stable {
			return
		}
		if try >= t.opts.MaxConfigRetries {
			t.stats.configUnstable.Add(1)
			return
		}
		t.stats.configRetries.Add(1)
	}
}

// WriteConfig implements virtio.Transport. A range past the device
// configuration is dropped and counted.
func (t *Transport) WriteConfig(off int, b []byte) {
	if !t.configRange(off, len(b)) {
		return
	}
	t.b.writeConfig(off, b)
}

// NumQueues implements virtio.Transport.
func (t *Transport) NumQueues() int { return t.nqueues }

// QueueMaxSize implements virtio.Transport.
func (t *Transport) QueueMaxSize(q int) int {
	if q < 0 || q >= t.nqueues {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.queueMaxSize(q)
}

// SetupQueue implements virtio.Transport.
func (t *Transport) SetupQueue(q int, size int, desc, avail, used uint64) error {
	if q < 0 || q >= t.nqueues {
		return fmt.Errorf("virtiopci: %v: queue %d of %d: %w", t.dev, q, t.nqueues, ErrBadQueue)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.vectorsStale && t.configVector != noVector {
		if got := t.b.setConfigVector(t.configVector); got != t.configVector {
			return fmt.Errorf("virtiopci: %v: config vector %d read back %#x after reset: %w", t.dev, t.configVector, got, ErrVectorRejected)
		}
	}
	t.vectorsStale = false
	if err := t.b.setupQueue(q, size, desc, avail, used, t.queueVectors[q]); err != nil {
		return fmt.Errorf("virtiopci: %v: %w", t.dev, err)
	}
	return nil
}

// Notify implements virtio.Transport. It takes no lock: it is one register
// write, made from the TX and RX paths.
func (t *Transport) Notify(q int) {
	if q < 0 || q >= t.nqueues || !t.b.notify(q) {
		t.stats.notifyBadQueue.Add(1)
	}
}
