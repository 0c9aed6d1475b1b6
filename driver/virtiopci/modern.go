package virtiopci

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/govirtio/govirtio/pci"
)

// virtio_pci_cap layout (virtio 1.2 §4.1.4): after the capability ID and
// next pointer, cap_len, cfg_type, bar, id, two bytes of padding, offset
// and length; the notification capability adds notify_off_multiplier.
const (
	vcapType       = 3
	vcapBAR        = 4
	vcapOffset     = 8
	vcapLength     = 12
	vcapMultiplier = 16
	vcapMinLen     = 16
	vcapNotifyLen  = 20
	vcapMaxBAR     = 5
)

// Structure types (cfg_type).
const (
	cfgCommon = 1
	cfgNotify = 2
	cfgISR    = 3
	cfgDevice = 4
)

// Common configuration structure (virtio 1.2 §4.1.4.3).
const (
	cDeviceFeatureSelect = 0
	cDeviceFeature       = 4
	cDriverFeatureSelect = 8
	cDriverFeature       = 12
	cConfigMSIXVector    = 16
	cNumQueues           = 18
	cDeviceStatus        = 20
	cConfigGeneration    = 21
	cQueueSelect         = 22
	cQueueSize           = 24
	cQueueMSIXVector     = 26
	cQueueEnable         = 28
	cQueueNotifyOff      = 30
	cQueueDesc           = 32
	cQueueDriver         = 40
	cQueueDevice         = 48
	commonMinLen         = 56 // virtio 1.0 layout; 1.2 adds fields we do not use

	// notifyWidth is the bytes a notification writes (the queue index)
	// without VIRTIO_F_NOTIFICATION_DATA.
	notifyWidth = 2
)

// Split ring alignment (virtio 1.2 §2.7): descriptor table 16, driver area
// 2, device area 4.
const (
	alignDesc   = 16
	alignDriver = 2
	alignDevice = 4
	// maxQueueSize is the largest split queue (virtio 1.2 §2.7).
	maxQueueSize = 32768
)

// vcap is one decoded virtio_pci_cap.
type vcap struct {
	// at is the capability's offset in configuration space.
	at uint16
	// typ is cfg_type.
	typ uint8
	// bar, offset and length locate the structure.
	bar            int
	offset, length uint32
	// multiplier is notify_off_multiplier (notification capability).
	multiplier uint32
}

// modernRegs is the modern layout.
type modernRegs struct {
	// common, notifyR, isrR and device are the mapped structures; device
	// is nil when the device has no configuration.
	common, notifyR, isrR, device pci.MMIO
	// notifyLen is the notification structure's length.
	notifyLen uint64
	// multiplier is notify_off_multiplier.
	multiplier uint32
	// deviceLen is the device configuration's length.
	deviceLen int
	// notifyAt holds, per queue, 1 + the offset of its notification
	// address in the notification structure; 0 until the queue is set up.
	// Atomic because Notify reads it without the transport's lock.
	notifyAt []atomic.Uint64
}

// openModern finds the virtio structures and maps them. For each type the
// first capability that is usable wins (virtio 1.2 §4.1.4: the driver
// should use the first instance it can); capabilities with a reserved BAR
// or an unknown type are ignored, ones that do not fit their BAR are
// skipped with the reason kept for the error if no usable one is left.
func openModern(d *pci.Device, p Platform) (*modernRegs, error) {
	vcs, err := d.VendorCapabilities()
	if err != nil {
		return nil, err
	}
	var (
		m        = &modernRegs{}
		problems []error
		found    [cfgDevice + 1]bool
		// bars caches decoded BARs: sizing one turns decoding off for a
		// moment, so do it once per BAR.
		bars = map[int]pci.BAR{}
	)
	for _, vc := range vcs {
		if vc.Len < vcapMinLen {
			continue
		}
		c, err := readVcap(d, vc)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if c.typ < cfgCommon || c.typ > cfgDevice || c.bar > vcapMaxBAR || found[c.typ] {
			continue
		}
		if err := m.use(d, p, c, bars); err != nil {
			problems = append(problems, err)
			continue
		}
		found[c.typ] = true
	}
	for _, need := range []struct {
		typ  uint8
		name string
	}{{cfgCommon, "common configuration"}, {cfgNotify, "notification"}, {cfgISR, "ISR"}} {
		if !found[need.typ] {
			problems = append(problems, fmt.Errorf("no usable %s capability: %w", need.name, ErrBadDevice))
			return nil, errors.Join(problems...)
		}
	}
	nq := int(m.common.Read16(cNumQueues))
	m.notifyAt = make([]atomic.Uint64, nq)
	return m, nil
}

func readVcap(d *pci.Device, vc pci.VendorCapability) (vcap, error) {
	c := vcap{at: vc.Offset}
	typ, err1 := vc.Read8(d, vcapType)
	bar, err2 := vc.Read8(d, vcapBAR)
	off, err3 := vc.Read32(d, vcapOffset)
	n, err4 := vc.Read32(d, vcapLength)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return c, err
	}
	c.typ, c.bar, c.offset, c.length = typ, int(bar), off, n
	if typ == cfgNotify {
		if vc.Len < vcapNotifyLen {
			return c, fmt.Errorf("notification capability at %#02x of %d bytes: %w", vc.Offset, vc.Len, ErrBadDevice)
		}
		var err error
		c.multiplier, err = vc.Read32(d, vcapMultiplier)
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

// use validates one structure and maps it.
func (m *modernRegs) use(d *pci.Device, p Platform, c vcap, bars map[int]pci.BAR) error {
	min := map[uint8]uint32{cfgCommon: commonMinLen, cfgNotify: notifyWidth, cfgISR: 1, cfgDevice: 0}[c.typ]
	if c.length < min {
		return fmt.Errorf("capability at %#02x type %d: length %d below %d: %w", c.at, c.typ, c.length, min, ErrBadDevice)
	}
	if c.typ == cfgNotify && c.multiplier != 0 && (c.multiplier%2 != 0 || bits.OnesCount32(c.multiplier) != 1) {
		// virtio 1.2 §4.1.4.4: an even power of 2, or 0.
		return fmt.Errorf("notify_off_multiplier %d: %w", c.multiplier, ErrBadDevice)
	}
	if c.typ == cfgDevice && c.length == 0 {
		return nil
	}
	bar, ok := bars[c.bar]
	if !ok {
		var err error
		if bar, err = d.BAR(c.bar); err != nil {
			return fmt.Errorf("capability at %#02x type %d: %w", c.at, c.typ, err)
		}
		bars[c.bar] = bar
	}
	r, err := bar.Map(d, uint64(c.offset), uint64(c.length), p.Mapper, p.IO)
	if err != nil {
		return fmt.Errorf("capability at %#02x type %d: %w", c.at, c.typ, err)
	}
	switch c.typ {
	case cfgCommon:
		m.common = r
	case cfgNotify:
		m.notifyR, m.notifyLen, m.multiplier = r, uint64(c.length), c.multiplier
	case cfgISR:
		m.isrR = r
	case cfgDevice:
		m.device, m.deviceLen = r, int(c.length)
	}
	return nil
}

func (m *modernRegs) legacy() bool { return false }

func (m *modernRegs) deviceFeatures() uint64 {
	var f uint64
	for sel := uint32(0); sel < 2; sel++ {
		m.common.Write32(cDeviceFeatureSelect, sel)
		f |= uint64(m.common.Read32(cDeviceFeature)) << (32 * sel)
	}
	return f
}

func (m *modernRegs) setDriverFeatures(f uint64) {
	for sel := uint32(0); sel < 2; sel++ {
		m.common.Write32(cDriverFeatureSelect, sel)
		m.common.Write32(cDriverFeature, uint32(f>>(32*sel)))
	}
}

func (m *modernRegs) status() uint8     { return m.common.Read8(cDeviceStatus) }
func (m *modernRegs) setStatus(s uint8) { m.common.Write8(cDeviceStatus, s) }
func (m *modernRegs) isr() uint8        { return m.isrR.Read8(0) }
func (m *modernRegs) generation() uint8 { return m.common.Read8(cConfigGeneration) }
func (m *modernRegs) msixChanged(bool)  {}

// reset forgets the notification addresses: every queue is disabled.
func (m *modernRegs) reset() {
	for i := range m.notifyAt {
		m.notifyAt[i].Store(0)
	}
}
func (m *modernRegs) configSize() int { return m.deviceLen }
func (m *modernRegs) numQueues() int  { return len(m.notifyAt) }
func (m *modernRegs) readConfig(off int, b []byte) {
	readFields(m.device, 0, off, b)
}
func (m *modernRegs) writeConfig(off int, b []byte) {
	writeFields(m.device, 0, off, b)
}

func (m *modernRegs) queueMaxSize(q int) int {
	m.common.Write16(cQueueSelect, uint16(q))
	return int(m.common.Read16(cQueueSize))
}

// setupQueue programs queue q (virtio 1.2 §4.1.5.1.3): size, vector,
// the three ring addresses, then queue_enable, after checking what the
// device reports: the queue exists and is not already enabled, and its
// notification address lies inside the notification structure.
func (m *modernRegs) setupQueue(q, size int, desc, avail, used uint64, vector uint16) error {
	max := m.queueMaxSize(q)
	switch {
	case max == 0:
		return fmt.Errorf("queue %d is not available: %w", q, ErrBadQueue)
	case size <= 0 || size > max || size > maxQueueSize || size&(size-1) != 0:
		return fmt.Errorf("queue %d: size %d (device maximum %d) not a power of two up to it: %w", q, size, max, ErrBadQueue)
	case desc%alignDesc != 0 || avail%alignDriver != 0 || used%alignDevice != 0:
		return fmt.Errorf("queue %d: rings at %#x/%#x/%#x misaligned: %w", q, desc, avail, used, ErrBadQueue)
	case m.common.Read16(cQueueEnable) != 0:
		return fmt.Errorf("queue %d already enabled (reset first): %w", q, ErrBadQueue)
	}
	noff := uint64(m.common.Read16(cQueueNotifyOff)) * uint64(m.multiplier)
	if noff+notifyWidth > m.notifyLen {
		return fmt.Errorf("queue %d: notification offset %#x past the %#x-byte notification structure: %w", q, noff, m.notifyLen, ErrBadDevice)
	}
	m.common.Write16(cQueueSize, uint16(size))
	if vector != noVector {
		m.common.Write16(cQueueMSIXVector, vector)
		if got := m.common.Read16(cQueueMSIXVector); got != vector {
			return fmt.Errorf("queue %d: vector %d read back %#x: %w", q, vector, got, ErrVectorRejected)
		}
	}
	write64(m.common, cQueueDesc, desc)
	write64(m.common, cQueueDriver, avail)
	write64(m.common, cQueueDevice, used)
	m.notifyAt[q].Store(noff + 1)
	m.common.Write16(cQueueEnable, 1)
	return nil
}

// write64 writes a 64-bit common configuration field as two 32-bit
// accesses, low half first, which every device must accept (virtio 1.2
// §4.1.3.1).
func write64(r pci.MMIO, off, v uint64) {
	r.Write32(off, uint32(v))
	r.Write32(off+4, uint32(v>>32))
}

func (m *modernRegs) notify(q int) bool {
	at := m.notifyAt[q].Load()
	if at == 0 {
		return false
	}
	m.notifyR.Write16(at-1, uint16(q))
	return true
}

func (m *modernRegs) setConfigVector(v uint16) uint16 {
	m.common.Write16(cConfigMSIXVector, v)
	return m.common.Read16(cConfigMSIXVector)
}

func (m *modernRegs) queueEnabled(q int) bool {
	m.common.Write16(cQueueSelect, uint16(q))
	return m.common.Read16(cQueueEnable) != 0
}

func (m *modernRegs) setQueueVector(q int, v uint16) uint16 {
	m.common.Write16(cQueueSelect, uint16(q))
	m.common.Write16(cQueueMSIXVector, v)
	return m.common.Read16(cQueueMSIXVector)
}
