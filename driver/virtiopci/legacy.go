package virtiopci

import (
	"fmt"
	"sync/atomic"

	"github.com/govirtio/govirtio/pci"
)

// Legacy register layout in I/O BAR 0 (virtio 1.2 §4.1.4.8). Registers are
// in the guest's byte order, little-endian on x86.
const (
	legHostFeatures  = 0  // 32-bit, device features 0..31
	legGuestFeatures = 4  // 32-bit, driver features 0..31
	legQueuePFN      = 8  // 32-bit, queue address >> 12
	legQueueSize     = 12 // 16-bit, read-only
	legQueueSelect   = 14 // 16-bit
	legQueueNotify   = 16 // 16-bit
	legStatus        = 18 // 8-bit
	legISR           = 19 // 8-bit, read clears
	legConfigVector  = 20 // 16-bit, only while MSI-X is enabled
	legQueueVector   = 22 // 16-bit, only while MSI-X is enabled
	legConfigNoMSIX  = 20 // device configuration without MSI-X
	legConfigMSIX    = 24 // device configuration with MSI-X enabled

	// legacyQueueAlign is the legacy ring alignment and the unit of the
	// queue PFN register (virtio 1.2 §2.7.2 legacy interfaces).
	legacyQueueAlign = 4096
	legacyPFNShift   = 12
	// legacyMaxQueues bounds the queue scan: the legacy layout has no
	// queue count, so queues are counted until the first one of size 0.
	legacyMaxQueues = 1024
)

// legacyRegs is the legacy layout.
type legacyRegs struct {
	// r is BAR 0.
	r pci.MMIO
	// size is BAR 0's size.
	size uint64
	// msixOn says MSI-X is enabled, which inserts the two vector
	// registers and moves the device configuration from 20 to 24.
	msixOn atomic.Bool
}

func openLegacy(d *pci.Device, p Platform) (*legacyRegs, error) {
	bar, err := d.BAR(0)
	if err != nil {
		return nil, fmt.Errorf("legacy BAR 0: %w", err)
	}
	if bar.Size < legConfigNoMSIX {
		return nil, fmt.Errorf("legacy BAR 0 of %d bytes: %w", bar.Size, ErrBadDevice)
	}
	r, err := bar.Map(d, 0, bar.Size, p.Mapper, p.IO)
	if err != nil {
		return nil, fmt.Errorf("legacy BAR 0: %w", err)
	}
	return &legacyRegs{r: r, size: bar.Size}, nil
}

func (l *legacyRegs) legacy() bool { return true }

func (l *legacyRegs) deviceFeatures() uint64 { return uint64(l.r.Read32(legHostFeatures)) }

// setDriverFeatures writes the low 32 bits; a legacy device has no more.
func (l *legacyRegs) setDriverFeatures(f uint64) { l.r.Write32(legGuestFeatures, uint32(f)) }

func (l *legacyRegs) status() uint8       { return l.r.Read8(legStatus) }
func (l *legacyRegs) setStatus(s uint8)   { l.r.Write8(legStatus, s) }
func (l *legacyRegs) isr() uint8          { return l.r.Read8(legISR) }
func (l *legacyRegs) generation() uint8   { return 0 }
func (l *legacyRegs) msixChanged(on bool) { l.msixOn.Store(on) }
func (l *legacyRegs) reset()              {}

func (l *legacyRegs) configBase() uint64 {
	if l.msixOn.Load() {
		return legConfigMSIX
	}
	return legConfigNoMSIX
}

func (l *legacyRegs) configSize() int {
	base := l.configBase()
	if l.size < base {
		return 0
	}
	return int(l.size - base)
}

func (l *legacyRegs) readConfig(off int, b []byte)  { readFields(l.r, l.configBase(), off, b) }
func (l *legacyRegs) writeConfig(off int, b []byte) { writeFields(l.r, l.configBase(), off, b) }

func (l *legacyRegs) numQueues() int {
	n := 0
	for n < legacyMaxQueues && l.queueMaxSize(n) != 0 {
		n++
	}
	return n
}

func (l *legacyRegs) queueMaxSize(q int) int {
	l.r.Write16(legQueueSelect, uint16(q))
	return int(l.r.Read16(legQueueSize))
}

// setupQueue checks the legacy contiguous layout (virtio 1.2 §2.7.2
// legacy interfaces: descriptor table at a 4096-aligned address, available
// ring right after it, used ring at the next 4096 boundary after the
// available ring and its used_event field) and writes the queue's page
// number.
func (l *legacyRegs) setupQueue(q, size int, desc, avail, used uint64, vector uint16) error {
	max := l.queueMaxSize(q)
	switch {
	case max == 0:
		return fmt.Errorf("legacy queue %d does not exist: %w", q, ErrBadQueue)
	case size != max:
		return fmt.Errorf("legacy queue %d: size %d, the device's size is %d: %w", q, size, max, ErrBadQueue)
	case desc == 0:
		return fmt.Errorf("legacy queue %d: page number 0 means no queue: %w", q, ErrBadQueue)
	case desc%legacyQueueAlign != 0:
		return fmt.Errorf("legacy queue %d: descriptor table at %#x not 4096-aligned: %w", q, desc, ErrBadQueue)
	case avail != desc+16*uint64(size):
		return fmt.Errorf("legacy queue %d: available ring at %#x, want %#x: %w", q, avail, desc+16*uint64(size), ErrBadQueue)
	case used != alignUp(avail+6+2*uint64(size), legacyQueueAlign):
		return fmt.Errorf("legacy queue %d: used ring at %#x, want %#x: %w", q, used, alignUp(avail+6+2*uint64(size), legacyQueueAlign), ErrBadQueue)
	case desc>>legacyPFNShift > 0xFFFFFFFF:
		return fmt.Errorf("legacy queue %d: address %#x beyond the 32-bit page number: %w", q, desc, ErrBadQueue)
	}
	if vector != noVector && l.msixOn.Load() {
		l.r.Write16(legQueueVector, vector)
		if got := l.r.Read16(legQueueVector); got != vector {
			return fmt.Errorf("legacy queue %d: vector %d read back %#x: %w", q, vector, got, ErrVectorRejected)
		}
	}
	pfn := uint32(desc >> legacyPFNShift)
	l.r.Write32(legQueuePFN, pfn)
	if got := l.r.Read32(legQueuePFN); got != pfn {
		return fmt.Errorf("legacy queue %d: page number %#x read back %#x: %w", q, pfn, got, ErrBadQueue)
	}
	return nil
}

func (l *legacyRegs) notify(q int) bool {
	l.r.Write16(legQueueNotify, uint16(q))
	return true
}

func (l *legacyRegs) setConfigVector(v uint16) uint16 {
	l.r.Write16(legConfigVector, v)
	return l.r.Read16(legConfigVector)
}

func (l *legacyRegs) queueEnabled(int) bool { return false }

func (l *legacyRegs) setQueueVector(q int, v uint16) uint16 {
	l.r.Write16(legQueueSelect, uint16(q))
	l.r.Write16(legQueueVector, v)
	return l.r.Read16(legQueueVector)
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
