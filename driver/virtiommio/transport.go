package virtiommio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
)

// Errors, matched with errors.Is.
var (
	// ErrNotVirtio: MagicValue is not "virt": nothing virtio at the
	// address the VMM gave.
	ErrNotVirtio = errors.New("virtiommio: no virtio-mmio device (bad magic)")
	// ErrBadVersion: a Version other than 1 (legacy) or 2 (modern).
	ErrBadVersion = errors.New("virtiommio: unsupported register layout version")
	// ErrEmptySlot: DeviceID 0, a transport with no device behind it
	// (QEMU's microvm has eight such slots whatever is plugged).
	ErrEmptySlot = errors.New("virtiommio: empty slot (device ID 0)")
	// ErrResetTimeout: the device status did not read back 0 after reset.
	ErrResetTimeout = errors.New("virtiommio: device did not complete reset")
	// ErrBadQueue: a queue index, size or address the device or the
	// layout cannot take, or a queue the device will not enable.
	ErrBadQueue = errors.New("virtiommio: bad queue setup")
	// ErrNoInterrupt: the platform cannot provide the device's line.
	ErrNoInterrupt = errors.New("virtiommio: no usable interrupt")
)

// Options adjust Open.
type Options struct {
	// ResetTimeout bounds how long Reset waits for the status to read 0;
	// zero means one second.
	ResetTimeout time.Duration
	// MaxConfigRetries bounds how many times ReadConfig rereads when the
	// configuration changes under it; zero means 64.
	MaxConfigRetries int
}

// Stats counts what the transport saw. Read it with Transport.Stats.
type Stats struct {
	// ConfigRetries counts ReadConfig rereads because the configuration
	// changed during a read; ConfigUnstable the reads given up after
	// Options.MaxConfigRetries (possibly torn data returned).
	ConfigRetries  uint64
	ConfigUnstable uint64
	// ConfigOutOfRange counts ReadConfig/WriteConfig calls past the
	// window (read as zeros, writes dropped).
	ConfigOutOfRange uint64
	// NotifyBadQueue counts Notify calls for a queue that does not exist.
	NotifyBadQueue uint64
	// QueueSizeClamped counts QueueMaxSize answers cut down from a
	// QueueNumMax above what a split ring can be (32768) or, on the
	// legacy layout, to a power of two.
	QueueSizeClamped uint64
	// LineInterrupts counts times the line fired; SpuriousLine those
	// that found InterruptStatus 0 (or only bits we do not know, which
	// are acknowledged anyway).
	LineInterrupts uint64
	SpuriousLine   uint64
	// RearmErrors counts failures to unmask the line (Rearmer).
	RearmErrors uint64
}

// counters are the live Stats.
type counters struct {
	configRetries, configUnstable, configOutOfRange, notifyBadQueue atomic.Uint64
	queueSizeClamped, lineInterrupts, spuriousLine, rearmErrors     atomic.Uint64
}

// Transport is virtio.Transport over one virtio-mmio register window.
type Transport struct {
	// dev is where the device is.
	dev Device
	// r is the mapped window, dev.Size bytes.
	r Registers
	// plat is how the machine is reached.
	plat Platform
	// opts are Open's options, defaults filled in.
	opts Options
	// legacy is set for Version 1.
	legacy bool
	// deviceID and vendorID are what the device reported at Open.
	deviceID, vendorID uint32
	// nqueues is how many queues exist (QueueNumMax nonzero), probed at
	// Open: the layout has no count register.
	nqueues int

	// mu serializes register sequences that go through a select register
	// (features, queue setup) and guards line. Notify, status and the
	// interrupt registers do not take it.
	mu sync.Mutex
	// line is the platform's interrupt for the device, obtained by the
	// first Interrupts call and kept: the platform hands a line out once.
	line virtio.Interrupt

	// stats are the counters.
	stats counters
}

var _ virtio.Transport = (*Transport)(nil)

// Open maps d's window and checks the device there: MagicValue "virt",
// Version 1 or 2, a nonzero DeviceID. It counts the queues. The device is
// not reset; virtio.Negotiate does that.
func Open(d Device, p Platform, o Options) (*Transport, error) {
	if d.Size < minWindow || d.Size > maxWindow {
		return nil, fmt.Errorf("virtiommio: %v: window of %d bytes: %w", d, d.Size, ErrBadDeviceWord)
	}
	if p.Mapper == nil {
		return nil, fmt.Errorf("virtiommio: %v: platform has no Mapper", d)
	}
	if o.ResetTimeout == 0 {
		o.ResetTimeout = time.Second
	}
	if o.MaxConfigRetries == 0 {
		o.MaxConfigRetries = 64
	}
	r, err := p.Mapper.MapRegisters(d.Base, d.Size)
	if err != nil {
		return nil, fmt.Errorf("virtiommio: %v: map: %w", d, err)
	}
	if m := r.Read32(regMagic); m != magicValue {
		return nil, fmt.Errorf("virtiommio: %v: magic %#08x: %w", d, m, ErrNotVirtio)
	}
	t := &Transport{dev: d, r: r, plat: p, opts: o}
	switch v := r.Read32(regVersion); v {
	case versionLegacy:
		t.legacy = true
	case versionModern:
	default:
		return nil, fmt.Errorf("virtiommio: %v: version %d: %w", d, v, ErrBadVersion)
	}
	t.deviceID = r.Read32(regDeviceID)
	if t.deviceID == 0 {
		return nil, fmt.Errorf("virtiommio: %v: %w", d, ErrEmptySlot)
	}
	t.vendorID = r.Read32(regVendorID)
	for t.nqueues < maxQueues {
		r.Write32(regQueueSel, uint32(t.nqueues))
		if r.Read32(regQueueNumMax) == 0 {
			break
		}
		t.nqueues++
	}
	return t, nil
}

// Device returns where the device is.
func (t *Transport) Device() Device { return t.dev }

// DeviceID is the virtio device type (1 is a network device).
func (t *Transport) DeviceID() uint32 { return t.deviceID }

// VendorID is the device's vendor ("QEMU" is 0x554d4551).
func (t *Transport) VendorID() uint32 { return t.vendorID }

// Version is the register layout: 1 legacy, 2 modern.
func (t *Transport) Version() int {
	if t.legacy {
		return versionLegacy
	}
	return versionModern
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		ConfigRetries:    c.configRetries.Load(),
		ConfigUnstable:   c.configUnstable.Load(),
		ConfigOutOfRange: c.configOutOfRange.Load(),
		NotifyBadQueue:   c.notifyBadQueue.Load(),
		QueueSizeClamped: c.queueSizeClamped.Load(),
		LineInterrupts:   c.lineInterrupts.Load(),
		SpuriousLine:     c.spuriousLine.Load(),
		RearmErrors:      c.rearmErrors.Load(),
	}
}

// Legacy implements virtio.Transport.
func (t *Transport) Legacy() bool { return t.legacy }

// DeviceFeatures implements virtio.Transport: both 32-bit words on the
// modern layout, the first only on the legacy one.
func (t *Transport) DeviceFeatures() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.r.Write32(regDeviceFeaturesSel, 0)
	f := uint64(t.r.Read32(regDeviceFeatures))
	if !t.legacy {
		t.r.Write32(regDeviceFeaturesSel, 1)
		f |= uint64(t.r.Read32(regDeviceFeatures)) << 32
	}
	return f
}

// SetDriverFeatures implements virtio.Transport.
func (t *Transport) SetDriverFeatures(f uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.r.Write32(regDriverFeaturesSel, 0)
	t.r.Write32(regDriverFeatures, uint32(f))
	if !t.legacy {
		t.r.Write32(regDriverFeaturesSel, 1)
		t.r.Write32(regDriverFeatures, uint32(f>>32))
	}
}

// Status implements virtio.Transport. The register is 32 bits wide; the
// status is its low byte.
func (t *Transport) Status() uint8 { return uint8(t.r.Read32(regStatus)) }

// SetStatus implements virtio.Transport.
func (t *Transport) SetStatus(s uint8) { t.r.Write32(regStatus, uint32(s)) }

// Reset implements virtio.Transport: it writes status 0 and waits, up to
// Options.ResetTimeout, for the device to read back 0 (virtio 1.2
// §4.2.3.1.1 and §2.4).
func (t *Transport) Reset() error {
	t.r.Write32(regStatus, 0)
	deadline := time.Now().Add(t.opts.ResetTimeout)
	for i := 0; ; i++ {
		s := t.r.Read32(regStatus)
		if s == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("virtiommio: %v: status %#02x after %v: %w", t.dev, s, t.opts.ResetTimeout, ErrResetTimeout)
		}
		if i < 16 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// configSize is how many configuration bytes the window holds.
func (t *Transport) configSize() int { return int(t.dev.Size - regConfig) }

// configRange checks [off, off+n) against the configuration in the window.
func (t *Transport) configRange(off, n int) bool {
	if off < 0 || n < 0 || off+n > t.configSize() {
		t.stats.configOutOfRange.Add(1)
		return false
	}
	return true
}

// ReadConfig implements virtio.Transport. It rereads while the
// configuration changes under it, at most Options.MaxConfigRetries times,
// after which it counts ConfigUnstable and returns the last read. The
// modern layout says so through ConfigGeneration (virtio 1.2 §4.2.2.2);
// the legacy one has none, so a multi-byte read is repeated until two
// reads agree. A range past the window reads as zeros and is counted.
func (t *Transport) ReadConfig(off int, b []byte) {
	if !t.configRange(off, len(b)) {
		clear(b)
		return
	}
	var again [16]byte // fields are at most 8 bytes; longer reads are not compared
	for try := 0; ; try++ {
		var g uint32
		if !t.legacy {
			g = t.r.Read32(regConfigGeneration)
		}
		t.readFields(off, b)
		stable := t.legacy || t.r.Read32(regConfigGeneration) == g
		if t.legacy && len(b) > 1 && len(b) <= len(again) {
			t.readFields(off, again[:len(b)])
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

// WriteConfig implements virtio.Transport. A range past the window is
// dropped and counted.
func (t *Transport) WriteConfig(off int, b []byte) {
	if !t.configRange(off, len(b)) {
		return
	}
	o := uint64(regConfig + off)
	switch {
	case len(b) == 1:
		t.r.Write8(o, b[0])
	case len(b) == 2 && o%2 == 0:
		t.r.Write16(o, binary.LittleEndian.Uint16(b))
	case len(b) == 4 && o%4 == 0:
		t.r.Write32(o, binary.LittleEndian.Uint32(b))
	case len(b) == 8 && o%4 == 0:
		t.r.Write32(o, binary.LittleEndian.Uint32(b))
		t.r.Write32(o+4, binary.LittleEndian.Uint32(b[4:]))
	default:
		for i := range b {
			t.r.Write8(o+uint64(i), b[i])
		}
	}
}

// readFields reads b at off in the configuration with the access widths
// its fields need (virtio 1.2 §4.2.2.2: 8-bit fields by 8-bit accesses,
// 16- and 32-bit fields by aligned accesses of their size, 64-bit fields
// by two 32-bit accesses). A caller reads one field at a time, so the
// length says the width; anything else (a MAC address, an unaligned
// range) goes byte by byte.
func (t *Transport) readFields(off int, b []byte) {
	o := uint64(regConfig + off)
	switch {
	case len(b) == 1:
		b[0] = t.r.Read8(o)
	case len(b) == 2 && o%2 == 0:
		binary.LittleEndian.PutUint16(b, t.r.Read16(o))
	case len(b) == 4 && o%4 == 0:
		binary.LittleEndian.PutUint32(b, t.r.Read32(o))
	case len(b) == 8 && o%4 == 0:
		binary.LittleEndian.PutUint32(b, t.r.Read32(o))
		binary.LittleEndian.PutUint32(b[4:], t.r.Read32(o+4))
	default:
		for i := range b {
			b[i] = t.r.Read8(o + uint64(i))
		}
	}
}

// NumQueues implements virtio.Transport.
func (t *Transport) NumQueues() int { return t.nqueues }

// QueueMaxSize implements virtio.Transport. A QueueNumMax above 32768 (no
// split ring is larger) is cut to 32768; on the legacy layout, where the
// driver must use the size this returns, it is cut to a power of two,
// which the layout lets the driver choose through QueueNum. Cuts are
// counted.
func (t *Transport) QueueMaxSize(q int) int {
	if q < 0 || q >= t.nqueues {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.queueMaxSize(q)
}

// queueMaxSize is QueueMaxSize with t.mu held.
func (t *Transport) queueMaxSize(q int) int {
	t.r.Write32(regQueueSel, uint32(q))
	max := t.r.Read32(regQueueNumMax)
	n := min(max, maxQueueSize)
	if t.legacy && n != 0 {
		n = 1 << (bits.Len32(n) - 1)
	}
	if n != max {
		t.stats.queueSizeClamped.Add(1)
	}
	return int(n)
}

// Split ring alignments (virtio 1.2 §2.7): descriptor table 16, available
// ring 2, used ring 4.
const (
	alignDesc   = 16
	alignDriver = 2
	alignDevice = 4
)

// SetupQueue implements virtio.Transport.
func (t *Transport) SetupQueue(q int, size int, desc, avail, used uint64) error {
	if q < 0 || q >= t.nqueues {
		return fmt.Errorf("virtiommio: %v: queue %d of %d: %w", t.dev, q, t.nqueues, ErrBadQueue)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	if t.legacy {
		err = t.setupLegacyQueue(q, size, desc, avail, used)
	} else {
		err = t.setupModernQueue(q, size, desc, avail, used)
	}
	if err != nil {
		return fmt.Errorf("virtiommio: %v: %w", t.dev, err)
	}
	return nil
}

// setupModernQueue programs queue q (virtio 1.2 §4.2.3.2): it checks the
// queue exists and is not already live, and the size and alignments,
// writes the size and the three ring addresses, sets QueueReady and
// checks that the device kept it.
func (t *Transport) setupModernQueue(q, size int, desc, avail, used uint64) error {
	max := t.queueMaxSize(q) // selects q
	switch {
	case max == 0:
		return fmt.Errorf("queue %d is not available: %w", q, ErrBadQueue)
	case size <= 0 || size > max || size&(size-1) != 0:
		return fmt.Errorf("queue %d: size %d (device maximum %d) not a power of two up to it: %w", q, size, max, ErrBadQueue)
	case desc%alignDesc != 0 || avail%alignDriver != 0 || used%alignDevice != 0:
		return fmt.Errorf("queue %d: rings at %#x/%#x/%#x misaligned: %w", q, desc, avail, used, ErrBadQueue)
	case t.r.Read32(regQueueReady) != 0:
		return fmt.Errorf("queue %d is already ready: %w", q, ErrBadQueue)
	}
	t.r.Write32(regQueueNum, uint32(size))
	t.r.Write32(regQueueDescLow, uint32(desc))
	t.r.Write32(regQueueDescHigh, uint32(desc>>32))
	t.r.Write32(regQueueDriverLow, uint32(avail))
	t.r.Write32(regQueueDriverHigh, uint32(avail>>32))
	t.r.Write32(regQueueDeviceLow, uint32(used))
	t.r.Write32(regQueueDeviceHigh, uint32(used>>32))
	t.r.Write32(regQueueReady, 1)
	if got := t.r.Read32(regQueueReady); got != 1 {
		return fmt.Errorf("queue %d: QueueReady read back %d: %w", q, got, ErrBadQueue)
	}
	return nil
}

// setupLegacyQueue checks the legacy contiguous layout (virtio 1.2 §2.7.2
// legacy interfaces: descriptor table at a 4096-aligned address, available
// ring right after it, used ring at the next 4096 boundary) and programs
// queue q the legacy way (§4.2.4): guest page size, queue size, alignment,
// page number, which it reads back.
func (t *Transport) setupLegacyQueue(q, size int, desc, avail, used uint64) error {
	max := t.queueMaxSize(q) // selects q
	wantUsed := alignUp(avail+6+2*uint64(size), legacyQueueAlign)
	switch {
	case max == 0:
		return fmt.Errorf("legacy queue %d does not exist: %w", q, ErrBadQueue)
	case size != max:
		return fmt.Errorf("legacy queue %d: size %d, the transport's size is %d: %w", q, size, max, ErrBadQueue)
	case desc == 0:
		return fmt.Errorf("legacy queue %d: page number 0 means no queue: %w", q, ErrBadQueue)
	case desc%legacyPageSize != 0:
		return fmt.Errorf("legacy queue %d: descriptor table at %#x not page-aligned: %w", q, desc, ErrBadQueue)
	case avail != desc+16*uint64(size):
		return fmt.Errorf("legacy queue %d: available ring at %#x, want %#x: %w", q, avail, desc+16*uint64(size), ErrBadQueue)
	case used != wantUsed:
		return fmt.Errorf("legacy queue %d: used ring at %#x, want %#x: %w", q, used, wantUsed, ErrBadQueue)
	case desc>>legacyPFNShift > 0xFFFFFFFF:
		return fmt.Errorf("legacy queue %d: address %#x beyond the 32-bit page number: %w", q, desc, ErrBadQueue)
	}
	t.r.Write32(regGuestPageSize, legacyPageSize)
	t.r.Write32(regQueueNum, uint32(size))
	t.r.Write32(regQueueAlign, legacyQueueAlign)
	pfn := uint32(desc >> legacyPFNShift)
	t.r.Write32(regQueuePFN, pfn)
	if got := t.r.Read32(regQueuePFN); got != pfn {
		return fmt.Errorf("legacy queue %d: page number %#x read back %#x: %w", q, pfn, got, ErrBadQueue)
	}
	return nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// Notify implements virtio.Transport. It takes no lock: it is one register
// write, made from the TX and RX paths.
func (t *Transport) Notify(q int) {
	if q < 0 || q >= t.nqueues {
		t.stats.notifyBadQueue.Add(1)
		return
	}
	t.r.Write32(regQueueNotify, uint32(q))
}
