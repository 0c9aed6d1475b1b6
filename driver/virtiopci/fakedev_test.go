package virtiopci_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

// fakeQueue is one queue's registers in fakeDev.
type fakeQueue struct {
	// max is the largest size the device accepts (0: no queue).
	max uint16
	// size, desc, driver, device and enable are what the driver wrote.
	size                 uint16
	desc, driver, device uint64
	enable               uint16
	// pfn is the legacy queue page number.
	pfn uint32
	// notifyOff is queue_notify_off.
	notifyOff uint16
	// vector is the queue's MSI-X vector.
	vector uint16
}

// fakeDev is the register-level state of a virtio device, shared by its
// legacy and modern register regions.
type fakeDev struct {
	mu sync.Mutex

	// features are the device features offered.
	features uint64
	// driverFeatures is what the driver wrote.
	driverFeatures uint64
	// devSel and drvSel are the feature select registers.
	devSel, drvSel uint32
	// status is the device status; rejectFeaturesOK clears FEATURES_OK
	// when the driver sets it; stuckReset ignores writes of 0.
	status           uint8
	rejectFeaturesOK bool
	stuckReset       bool
	// isr is the ISR status; reading clears it.
	isr uint8
	// config is the device configuration.
	config []byte
	// generation is config_generation; genBumps makes the next that many
	// device configuration reads change the configuration under the
	// driver (generation and config[0] both move).
	generation uint8
	genBumps   int
	// configAccesses logs device-configuration access widths.
	configAccesses []int
	// queues are the queue registers; sel is queue_select.
	queues []fakeQueue
	sel    uint16
	// configVector is the configuration MSI-X vector; maxVectors is how
	// many vectors the device accepts (others read back NO_VECTOR).
	configVector uint16
	maxVectors   int
	// notifies logs (offset, value) of notification writes, unless
	// discardNotifies (benchmarks).
	notifies        [][2]uint64
	discardNotifies bool
	// msixOn reports whether MSI-X is enabled in config space (the
	// legacy layout depends on it).
	msixOn func() bool
	// bad logs accesses a driver should not make.
	bad []string
}

func newFakeDev(features uint64, config []byte, queueMax ...uint16) *fakeDev {
	d := &fakeDev{features: features, config: config, configVector: 0xFFFF, maxVectors: 64, msixOn: func() bool { return false }}
	for i, m := range queueMax {
		d.queues = append(d.queues, fakeQueue{max: m, notifyOff: uint16(i), vector: 0xFFFF})
	}
	return d
}

func (d *fakeDev) badf(format string, args ...any) {
	d.bad = append(d.bad, fmt.Sprintf(format, args...))
}

func (d *fakeDev) queue() *fakeQueue {
	if int(d.sel) < len(d.queues) {
		return &d.queues[d.sel]
	}
	return nil
}

func (d *fakeDev) vector(v uint16) uint16 {
	if v != 0xFFFF && int(v) >= d.maxVectors {
		return 0xFFFF
	}
	return v
}

func (d *fakeDev) setStatus(v uint8) {
	if v == 0 {
		if d.stuckReset {
			return
		}
		d.status, d.driverFeatures, d.configVector = 0, 0, 0xFFFF
		for i := range d.queues {
			q := &d.queues[i]
			q.size, q.desc, q.driver, q.device, q.enable, q.pfn, q.vector = 0, 0, 0, 0, 0, 0, 0xFFFF
		}
		return
	}
	if d.rejectFeaturesOK {
		v &^= virtio.StatusFeaturesOK
	}
	d.status = v
}

func (d *fakeDev) readISR() uint8 {
	v := d.isr
	d.isr = 0
	return v
}

func (d *fakeDev) readConfig(off uint64, width int) uint64 {
	d.configAccesses = append(d.configAccesses, width)
	if d.genBumps > 0 {
		d.genBumps--
		d.generation++
		d.config[0]++
	}
	if off+uint64(width) > uint64(len(d.config)) {
		d.badf("config read %d+%d past %d", off, width, len(d.config))
		return ^uint64(0)
	}
	b := make([]byte, 8)
	copy(b, d.config[off:off+uint64(width)])
	return binary.LittleEndian.Uint64(b)
}

func (d *fakeDev) writeConfig(off uint64, width int, v uint64) {
	d.configAccesses = append(d.configAccesses, width)
	if off+uint64(width) > uint64(len(d.config)) {
		d.badf("config write %d+%d past %d", off, width, len(d.config))
		return
	}
	b := binary.LittleEndian.AppendUint64(nil, v)
	copy(d.config[off:], b[:width])
}

// snapshot returns a copy of queue q's registers.
func (d *fakeDev) snapshot(q int) fakeQueue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queues[q]
}

func (d *fakeDev) badAccesses() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.bad...)
}

// legacyRegion is the legacy I/O BAR 0 layout over a fakeDev.
type legacyRegion struct{ d *fakeDev }

// legacyField returns the register at off in the legacy layout with MSI-X
// on or off, and its width; 0 width means the device configuration.
func legacyField(off uint64, msix bool) (name string, width int) {
	fields := []struct {
		off   uint64
		name  string
		width int
	}{{0, "hostf", 4}, {4, "guestf", 4}, {8, "pfn", 4}, {12, "qsize", 2}, {14, "qsel", 2}, {16, "notify", 2}, {18, "status", 1}, {19, "isr", 1}}
	if msix {
		fields = append(fields, struct {
			off   uint64
			name  string
			width int
		}{20, "cvec", 2}, struct {
			off   uint64
			name  string
			width int
		}{22, "qvec", 2})
	}
	for _, f := range fields {
		if off == f.off {
			return f.name, f.width
		}
	}
	return "", 0
}

func (r legacyRegion) configBase() uint64 {
	if r.d.msixOn() {
		return 24
	}
	return 20
}

func (r legacyRegion) Read(off uint64, width int) uint64 {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if base := r.configBase(); off >= base {
		return d.readConfig(off-base, width)
	}
	name, w := legacyField(off, d.msixOn())
	if w != width {
		d.badf("legacy read at %d width %d (%s is %d bytes)", off, width, name, w)
		return ^uint64(0)
	}
	switch name {
	case "hostf":
		return d.features & 0xFFFFFFFF
	case "guestf":
		return d.driverFeatures
	case "pfn":
		if q := d.queue(); q != nil {
			return uint64(q.pfn)
		}
	case "qsize":
		if q := d.queue(); q != nil {
			return uint64(q.max)
		}
	case "qsel":
		return uint64(d.sel)
	case "status":
		return uint64(d.status)
	case "isr":
		return uint64(d.readISR())
	case "cvec":
		return uint64(d.configVector)
	case "qvec":
		if q := d.queue(); q != nil {
			return uint64(q.vector)
		}
		return 0xFFFF
	}
	return 0
}

func (r legacyRegion) Write(off uint64, width int, v uint64) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if base := r.configBase(); off >= base {
		d.writeConfig(off-base, width, v)
		return
	}
	name, w := legacyField(off, d.msixOn())
	if w != width {
		d.badf("legacy write at %d width %d (%s is %d bytes)", off, width, name, w)
		return
	}
	switch name {
	case "guestf":
		d.driverFeatures = v
	case "pfn":
		if q := d.queue(); q != nil {
			q.pfn = uint32(v)
		}
	case "qsel":
		d.sel = uint16(v)
	case "notify":
		if !d.discardNotifies {
			d.notifies = append(d.notifies, [2]uint64{off, v})
		}
	case "status":
		d.setStatus(uint8(v))
	case "cvec":
		d.configVector = d.vector(uint16(v))
	case "qvec":
		if q := d.queue(); q != nil {
			q.vector = d.vector(uint16(v))
		}
	default:
		d.badf("legacy write to read-only %s", name)
	}
}

// commonRegion is the modern common configuration over a fakeDev.
type commonRegion struct{ d *fakeDev }

var commonWidths = map[uint64]int{0: 4, 4: 4, 8: 4, 12: 4, 16: 2, 18: 2, 20: 1, 21: 1, 22: 2, 24: 2, 26: 2, 28: 2, 30: 2,
	32: 4, 36: 4, 40: 4, 44: 4, 48: 4, 52: 4}

func (r commonRegion) Read(off uint64, width int) uint64 {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if commonWidths[off] != width {
		d.badf("common read at %d width %d", off, width)
		return ^uint64(0)
	}
	q := d.queue()
	if q == nil {
		q = &fakeQueue{}
	}
	switch off {
	case 0:
		return uint64(d.devSel)
	case 4:
		if d.devSel > 1 {
			return 0
		}
		return d.features >> (32 * d.devSel) & 0xFFFFFFFF
	case 8:
		return uint64(d.drvSel)
	case 12:
		if d.drvSel > 1 {
			return 0
		}
		return d.driverFeatures >> (32 * d.drvSel) & 0xFFFFFFFF
	case 16:
		return uint64(d.configVector)
	case 18:
		return uint64(len(d.queues))
	case 20:
		return uint64(d.status)
	case 21:
		return uint64(d.generation)
	case 22:
		return uint64(d.sel)
	case 24:
		if q.enable == 0 && q.size == 0 {
			return uint64(q.max)
		}
		return uint64(q.size)
	case 26:
		if d.queue() == nil {
			return 0xFFFF
		}
		return uint64(q.vector)
	case 28:
		return uint64(q.enable)
	case 30:
		return uint64(q.notifyOff)
	case 32, 36:
		return q.desc >> (8 * (off - 32)) & 0xFFFFFFFF
	case 40, 44:
		return q.driver >> (8 * (off - 40)) & 0xFFFFFFFF
	case 48, 52:
		return q.device >> (8 * (off - 48)) & 0xFFFFFFFF
	}
	return 0
}

func set32(p *uint64, half uint64, v uint64) {
	shift := 32 * half
	*p = *p&^(0xFFFFFFFF<<shift) | (v&0xFFFFFFFF)<<shift
}

func (r commonRegion) Write(off uint64, width int, v uint64) {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if commonWidths[off] != width {
		d.badf("common write at %d width %d", off, width)
		return
	}
	q := d.queue()
	if q == nil && off >= 24 {
		d.badf("common write at %d with queue_select %d out of range", off, d.sel)
		return
	}
	if q != nil && q.enable != 0 && off >= 24 {
		d.badf("common write at %d to enabled queue %d", off, d.sel)
	}
	switch off {
	case 0:
		d.devSel = uint32(v)
	case 8:
		d.drvSel = uint32(v)
	case 12:
		if d.drvSel <= 1 {
			set32(&d.driverFeatures, uint64(d.drvSel), v)
		}
	case 16:
		d.configVector = d.vector(uint16(v))
	case 20:
		d.setStatus(uint8(v))
	case 22:
		d.sel = uint16(v)
	case 24:
		q.size = uint16(v)
	case 26:
		q.vector = d.vector(uint16(v))
	case 28:
		q.enable = uint16(v)
	case 32, 36:
		set32(&q.desc, (off-32)/4, v)
	case 40, 44:
		set32(&q.driver, (off-40)/4, v)
	case 48, 52:
		set32(&q.device, (off-48)/4, v)
	default:
		d.badf("common write to read-only %d", off)
	}
}

// notifyRegion logs notifications.
type notifyRegion struct{ d *fakeDev }

func (r notifyRegion) Read(off uint64, width int) uint64 { return 0 }
func (r notifyRegion) Write(off uint64, width int, v uint64) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if width != 2 {
		r.d.badf("notify write width %d", width)
	}
	if !r.d.discardNotifies {
		r.d.notifies = append(r.d.notifies, [2]uint64{off, v})
	}
}

// isrRegion is the ISR status byte; reading clears it.
type isrRegion struct{ d *fakeDev }

func (r isrRegion) Read(off uint64, width int) uint64 {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if off != 0 || width != 1 {
		r.d.badf("isr read at %d width %d", off, width)
	}
	return uint64(r.d.readISR())
}
func (r isrRegion) Write(uint64, int, uint64) {}

// deviceRegion is the modern device configuration.
type deviceRegion struct{ d *fakeDev }

func (r deviceRegion) Read(off uint64, width int) uint64 {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	return r.d.readConfig(off, width)
}
func (r deviceRegion) Write(off uint64, width int, v uint64) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.writeConfig(off, width, v)
}

// Virtio structure placement in BAR 4, as QEMU lays it out.
const (
	commonAt     = 0x0000
	isrAt        = 0x1000
	deviceAt     = 0x2000
	notifyAt     = 0x3000
	structSize   = 0x1000
	bar4Size     = 0x4000
	bar4Addr     = 0xFE000000
	bar0Port     = 0xC000
	bar0Size     = 0x40
	bar1Addr     = 0xFEBD1000
	pbaAt        = 0x800
	testLine     = 11
	netDevice    = 0x1041
	legacyDevice = 0x1000
)

// virtioCap builds a virtio_pci_cap.
func virtioCap(typ, bar uint8, off, length uint32, mult ...uint32) pcitest.Cap {
	n := 16
	if len(mult) > 0 {
		n = 20
	}
	body := make([]byte, n-2)
	body[0] = byte(n) // cap_len
	body[1] = typ
	body[2] = bar
	binary.LittleEndian.PutUint32(body[6:], off)
	binary.LittleEndian.PutUint32(body[10:], length)
	if len(mult) > 0 {
		binary.LittleEndian.PutUint32(body[14:], mult[0])
	}
	return pcitest.Cap{ID: pci.CapVendorSpecific, Body: body}
}

// layout describes a fake virtio PCI function.
type layout struct {
	// deviceID is 0x1000 (transitional/legacy) or 0x1040+type.
	deviceID uint16
	// legacyBAR gives the function the legacy I/O BAR 0.
	legacyBAR bool
	// modernCaps gives it the virtio capabilities.
	modernCaps bool
	// msixVectors is the MSI-X table size; 0 for none.
	msixVectors int
	// multiplier is notify_off_multiplier.
	multiplier uint32
	// caps replaces the default virtio capabilities when not nil.
	caps []pcitest.Cap
	// pin is the interrupt pin (default INTA).
	pin uint8
}

// fakeMachine is a machine with one fake virtio function at 00:03.0.
type fakeMachine struct {
	m    *pcitest.Machine
	f    *pcitest.Function
	dev  *fakeDev
	pdev *pci.Device
	msix *pcitest.MSIXTable
	// msiCap is where the MSI-X capability is in config space.
	msiCap uint16
}

func newFakeMachine(l layout, d *fakeDev) *fakeMachine {
	fm := &fakeMachine{m: pcitest.NewMachine(), dev: d}
	spec := pcitest.Spec{VendorID: 0x1AF4, DeviceID: l.deviceID, Class: 2, SubsystemVendorID: 0x1AF4,
		SubsystemID: 1, InterruptLine: testLine, InterruptPin: 1, BARs: make([]pcitest.BAR, 6)}
	if l.deviceID >= 0x1040 {
		spec.SubsystemID = 0x1100
		spec.Revision = 1
	}
	if l.pin != 0 {
		spec.InterruptPin = l.pin
	}
	if l.legacyBAR {
		spec.BARs[0] = pcitest.BAR{Kind: pci.BARIO, Size: bar0Size, Addr: bar0Port, Region: legacyRegion{d}}
	}
	if l.msixVectors > 0 {
		fm.msix = pcitest.NewMSIXTable(l.msixVectors)
		spec.BARs[1] = pcitest.BAR{Kind: pci.BARMem32, Size: 0x1000, Addr: bar1Addr, Region: pcitest.Mux{
			{Off: 0, Size: fm.msix.TableBytes(), Region: fm.msix.Table()},
			{Off: pbaAt, Size: fm.msix.PBABytes(), Region: fm.msix.PBA()},
		}}
		spec.Caps = append(spec.Caps, pcitest.MSIXCap(l.msixVectors, 1, 0, 1, pbaAt))
	}
	if l.modernCaps {
		spec.BARs[4] = pcitest.BAR{Kind: pci.BARMem64, Size: bar4Size, Addr: bar4Addr, Prefetchable: true, Region: pcitest.Mux{
			{Off: commonAt, Size: structSize, Region: commonRegion{d}},
			{Off: isrAt, Size: structSize, Region: isrRegion{d}},
			{Off: deviceAt, Size: uint64(len(d.config)), Region: deviceRegion{d}},
			{Off: notifyAt, Size: structSize, Region: notifyRegion{d}},
		}}
		caps := l.caps
		if caps == nil {
			caps = []pcitest.Cap{
				virtioCap(1, 4, commonAt, structSize),
				virtioCap(3, 4, isrAt, structSize),
				virtioCap(4, 4, deviceAt, uint32(len(d.config))),
				virtioCap(2, 4, notifyAt, structSize, l.multiplier),
			}
		}
		spec.Caps = append(spec.Caps, caps...)
	}
	fm.f = fm.m.AddSpec(pci.Address{Device: 3}, spec)
	if l.msixVectors > 0 {
		fm.msiCap = fm.f.CapOffset(0)
		fm.msix.Bind(fm.f, fm.msiCap)
		d.msixOn = func() bool { return fm.f.Peek16(fm.msiCap+2)&0x8000 != 0 }
	}
	pd, err := pci.Open(fm.m, pci.Address{Device: 3})
	if err != nil {
		panic(err)
	}
	fm.pdev = pd
	return fm
}

// chanIRQ is a virtio.Interrupt fired by tests.
type chanIRQ struct{ c chan struct{} }

func newChanIRQ() *chanIRQ { return &chanIRQ{c: make(chan struct{}, 1)} }

func (i *chanIRQ) fire() {
	select {
	case i.c <- struct{}{}:
	default:
	}
}

func (i *chanIRQ) Wait(ctx context.Context) error {
	select {
	case <-i.c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fakeMSI is an MSIAllocator handing out data values 0x30, 0x31...
type fakeMSI struct {
	mu   sync.Mutex
	irqs []*chanIRQ
	// failAfter makes allocations past this many fail (0: never).
	failAfter int
}

func (a *fakeMSI) AllocMSI() (uint64, uint32, virtio.Interrupt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failAfter > 0 && len(a.irqs) >= a.failAfter {
		return 0, 0, nil, fmt.Errorf("out of vectors")
	}
	irq := newChanIRQ()
	a.irqs = append(a.irqs, irq)
	return 0xFEE00000, uint32(0x30 + len(a.irqs) - 1), irq, nil
}

// deliver routes an MSI write to the vector with that data.
func (a *fakeMSI) deliver(addr uint64, data uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := int(data) - 0x30; addr == 0xFEE00000 && i >= 0 && i < len(a.irqs) {
		a.irqs[i].fire()
	}
}

// fakeLines is a LineInterrupter with one line per number.
type fakeLines struct {
	mu    sync.Mutex
	lines map[uint8]*chanIRQ
}

func (f *fakeLines) LineInterrupt(line uint8) (virtio.Interrupt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lines == nil {
		f.lines = map[uint8]*chanIRQ{}
	}
	if f.lines[line] == nil {
		f.lines[line] = newChanIRQ()
	}
	return f.lines[line], nil
}

func (f *fakeLines) line(n uint8) *chanIRQ {
	i, _ := f.LineInterrupt(n)
	return i.(*chanIRQ)
}
