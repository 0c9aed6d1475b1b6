package virtiommio

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/govirtio/govirtio/driver/virtio"
)

// fakeDevice is a virtio-mmio register file that behaves as the spec says
// unless a test makes it misbehave through its fields.
type fakeDevice struct {
	mu sync.Mutex

	magic, version, deviceID, vendorID uint32
	features                           uint64 // offered
	driverFeatures                     uint64 // written
	featSel, drvFeatSel                uint32
	queueSel                           uint32
	numMax                             []uint32 // per queue; len is how many exist
	queues                             map[uint32]*fakeQueue
	guestPageSize                      uint32
	status                             uint32
	stuckStatus                        bool // a reset never reads back 0
	dropReady                          bool // QueueReady never reads 1
	isr                                uint32
	acks                               []uint32
	config                             []byte
	generation                         uint32
	bumpGeneration                     int // each generation read changes it this many more times
	notified                           []uint32
}

type fakeQueue struct {
	num, align, pfn, ready uint32
	desc, driver, device   uint64
}

func newFake(version uint32) *fakeDevice {
	return &fakeDevice{
		magic: magicValue, version: version, deviceID: 1, vendorID: 0x554d4551,
		features: 1<<32 | 1<<5 | 1<<16,
		numMax:   []uint32{256, 256, 64},
		queues:   map[uint32]*fakeQueue{},
		config:   make([]byte, 0x100),
	}
}

func (f *fakeDevice) q() *fakeQueue {
	q := f.queues[f.queueSel]
	if q == nil {
		q = &fakeQueue{}
		f.queues[f.queueSel] = q
	}
	return q
}

func (f *fakeDevice) Read32(off uint64) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= regConfig {
		return binary.LittleEndian.Uint32(f.config[off-regConfig:])
	}
	switch off {
	case regMagic:
		return f.magic
	case regVersion:
		return f.version
	case regDeviceID:
		return f.deviceID
	case regVendorID:
		return f.vendorID
	case regDeviceFeatures:
		if f.featSel > 1 {
			return 0
		}
		return uint32(f.features >> (32 * f.featSel))
	case regQueueNumMax:
		if int(f.queueSel) < len(f.numMax) {
			return f.numMax[f.queueSel]
		}
		return 0
	case regQueueReady:
		if f.dropReady {
			return 0
		}
		return f.q().ready
	case regQueuePFN:
		return f.q().pfn
	case regInterruptStatus:
		return f.isr
	case regStatus:
		return f.status
	case regConfigGeneration:
		g := f.generation
		if f.bumpGeneration > 0 {
			f.bumpGeneration--
			f.generation++
		}
		return g
	}
	return 0
}

func (f *fakeDevice) Write32(off uint64, v uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= regConfig {
		binary.LittleEndian.PutUint32(f.config[off-regConfig:], v)
		return
	}
	switch off {
	case regDeviceFeaturesSel:
		f.featSel = v
	case regDriverFeaturesSel:
		f.drvFeatSel = v
	case regDriverFeatures:
		if f.drvFeatSel <= 1 {
			sh := 32 * f.drvFeatSel
			f.driverFeatures = f.driverFeatures&^(0xffffffff<<sh) | uint64(v)<<sh
		}
	case regGuestPageSize:
		f.guestPageSize = v
	case regQueueSel:
		f.queueSel = v
	case regQueueNum:
		f.q().num = v
	case regQueueAlign:
		f.q().align = v
	case regQueuePFN:
		f.q().pfn = v
	case regQueueReady:
		f.q().ready = v
	case regQueueDescLow:
		f.q().desc = f.q().desc&^0xffffffff | uint64(v)
	case regQueueDescHigh:
		f.q().desc = f.q().desc&0xffffffff | uint64(v)<<32
	case regQueueDriverLow:
		f.q().driver = f.q().driver&^0xffffffff | uint64(v)
	case regQueueDriverHigh:
		f.q().driver = f.q().driver&0xffffffff | uint64(v)<<32
	case regQueueDeviceLow:
		f.q().device = f.q().device&^0xffffffff | uint64(v)
	case regQueueDeviceHigh:
		f.q().device = f.q().device&0xffffffff | uint64(v)<<32
	case regQueueNotify:
		f.notified = append(f.notified, v)
	case regInterruptACK:
		f.acks = append(f.acks, v)
		f.isr &^= v
	case regStatus:
		if v == 0 {
			if f.stuckStatus {
				return
			}
			f.queues = map[uint32]*fakeQueue{}
			f.driverFeatures = 0
		}
		f.status = v
	}
}

func (f *fakeDevice) Read8(off uint64) uint8 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.config[off-regConfig]
}

func (f *fakeDevice) Read16(off uint64) uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return binary.LittleEndian.Uint16(f.config[off-regConfig:])
}

func (f *fakeDevice) Write8(off uint64, v uint8) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.config[off-regConfig] = v
}

func (f *fakeDevice) Write16(off uint64, v uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	binary.LittleEndian.PutUint16(f.config[off-regConfig:], v)
}

// fakeMapper hands out the fake's registers, checking the window asked for.
type fakeMapper struct {
	dev        *fakeDevice
	phys, size uint64
}

func (m *fakeMapper) MapRegisters(phys, size uint64) (Registers, error) {
	m.phys, m.size = phys, size
	return m.dev, nil
}

// fakeLine is a platform line a test fires by hand.
type fakeLine struct {
	fire   chan struct{}
	rearms int
	mu     sync.Mutex
}

func (l *fakeLine) Wait(ctx context.Context) error {
	select {
	case <-l.fire:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *fakeLine) Rearm() error {
	l.mu.Lock()
	l.rearms++
	l.mu.Unlock()
	return nil
}

// fakeLines gives out one fakeLine and records the GSI asked for.
type fakeLines struct {
	line *fakeLine
	gsi  []int
}

func (fl *fakeLines) LineInterrupt(gsi int) (virtio.Interrupt, error) {
	fl.gsi = append(fl.gsi, gsi)
	return fl.line, nil
}
