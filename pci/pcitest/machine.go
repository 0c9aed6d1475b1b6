package pcitest

import (
	"fmt"
	"sync"

	"github.com/govirtio/govirtio/pci"
)

// Machine is a fake PCI machine: a set of functions by address. It
// implements pci.ConfigSpace, pci.PortIO and pci.Mapper.
type Machine struct {
	// mu guards every function's configuration state and the fields below.
	mu sync.Mutex
	// funcs holds the functions by address.
	funcs map[pci.Address]*Function
	// configAddress is the last value written to port 0xCF8.
	configAddress uint32
	// faults records accesses that hit nothing (a mapped window past its
	// size, a port or address no BAR decodes).
	faults []string
	// msi receives MSI-X messages from MSIXTable.Fire.
	msi func(addr uint64, data uint32)
}

var (
	_ pci.ConfigSpace = (*Machine)(nil)
	_ pci.PortIO      = (*Machine)(nil)
	_ pci.Mapper      = (*Machine)(nil)
)

// NewMachine returns an empty machine.
func NewMachine() *Machine { return &Machine{funcs: map[pci.Address]*Function{}} }

// Add places f at a and returns it.
func (m *Machine) Add(a pci.Address, f *Function) *Function {
	m.mu.Lock()
	defer m.mu.Unlock()
	f.machine = m
	m.funcs[a] = f
	return f
}

// AddSpec builds a function from s and places it at a.
func (m *Machine) AddSpec(a pci.Address, s Spec) *Function { return m.Add(a, NewFunction(s)) }

// Remove takes the function at a away: it reads all ones from then on, as
// a surprise-removed device does.
func (m *Machine) Remove(a pci.Address) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.funcs, a)
}

// OnMSI sets the function that receives MSI-X messages fired by
// MSIXTable.Fire.
func (m *Machine) OnMSI(fn func(addr uint64, data uint32)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msi = fn
}

// Faults returns the accesses that hit nothing, in order.
func (m *Machine) Faults() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.faults...)
}

func (m *Machine) fault(format string, args ...any) {
	m.faults = append(m.faults, fmt.Sprintf(format, args...))
}

// Read32 implements pci.ConfigSpace.
func (m *Machine) Read32(a pci.Address, off uint16) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.funcs[a]
	if f == nil || off >= 256 {
		return 0xFFFFFFFF
	}
	return f.read32(off)
}

// Write32 implements pci.ConfigSpace.
func (m *Machine) Write32(a pci.Address, off uint16, v uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.funcs[a]
	if f == nil || off >= 256 {
		return
	}
	f.write32(off, v)
}

// mech1 decodes the latched CONFIG_ADDRESS; ok is false when the enable
// bit is clear or nothing is there. Called with mu held.
func (m *Machine) mech1() (f *Function, off uint16, ok bool) {
	ca := m.configAddress
	if ca&(1<<31) == 0 {
		return nil, 0, false
	}
	a := pci.Address{Bus: uint8(ca >> 16), Device: uint8(ca>>11) & 0x1F, Function: uint8(ca>>8) & 7}
	f = m.funcs[a]
	return f, uint16(ca & 0xFC), f != nil
}

// portRead and portWrite run configuration mechanism #1 on 0xCF8..0xCFF and
// route the rest to I/O BARs.
func (m *Machine) portRead(port uint16, width int) uint64 {
	ones := ^uint64(0) >> (64 - 8*width)
	m.mu.Lock()
	switch {
	case port == 0xCF8 && width == 4:
		defer m.mu.Unlock()
		return uint64(m.configAddress)
	case port >= 0xCFC && port+uint16(width) <= 0xD00:
		defer m.mu.Unlock()
		f, off, ok := m.mech1()
		if !ok {
			return ones
		}
		d := f.read32(off)
		return uint64(d>>(8*(port-0xCFC))) & ones
	}
	r, off := m.findIO(port, width)
	m.mu.Unlock()
	if r == nil {
		return ones
	}
	return r.Read(off, width)
}

func (m *Machine) portWrite(port uint16, width int, v uint64) {
	m.mu.Lock()
	switch {
	case port == 0xCF8 && width == 4:
		defer m.mu.Unlock()
		m.configAddress = uint32(v)
		return
	case port >= 0xCFC && port+uint16(width) <= 0xD00:
		defer m.mu.Unlock()
		f, off, ok := m.mech1()
		if !ok {
			return
		}
		shift := 8 * (port - 0xCFC)
		mask := uint32(^uint64(0)>>(64-8*width)) << shift
		d := f.read32(off)
		d = d&^mask | uint32(v)<<shift&mask
		f.write32(off, d)
		return
	}
	r, off := m.findIO(port, width)
	m.mu.Unlock()
	if r != nil {
		r.Write(off, width, v)
	}
}

// findIO finds the I/O BAR decoding port. Called with mu held.
func (m *Machine) findIO(port uint16, width int) (Region, uint64) {
	for _, f := range m.funcs {
		if f.command()&pci.CommandIO == 0 {
			continue
		}
		for i := 0; i < f.numBARs(); i++ {
			addr, size, io, ok := f.bar(i)
			if !ok || !io || addr == 0 {
				continue
			}
			p := uint64(port)
			if p >= addr && p+uint64(width) <= addr+size {
				return f.regions[i], p - addr
			}
		}
	}
	m.fault("port %#x width %d: no I/O BAR decodes it", port, width)
	return nil, 0
}

// findMem finds the memory BAR decoding [phys, phys+width). With decoding
// false it ignores the command register (used by MapMMIO, which may run
// before decoding is on). Called with mu held.
func (m *Machine) findMem(phys, width uint64, decoding bool) (Region, uint64, bool) {
	for _, f := range m.funcs {
		if decoding && f.command()&pci.CommandMemory == 0 {
			continue
		}
		for i := 0; i < f.numBARs(); i++ {
			addr, size, io, ok := f.bar(i)
			if !ok || io || addr == 0 {
				continue
			}
			if phys >= addr && phys+width <= addr+size {
				return f.regions[i], phys - addr, true
			}
		}
	}
	return nil, 0, false
}

// In8 implements pci.PortIO.
func (m *Machine) In8(port uint16) uint8 { return uint8(m.portRead(port, 1)) }

// In16 implements pci.PortIO.
func (m *Machine) In16(port uint16) uint16 { return uint16(m.portRead(port, 2)) }

// In32 implements pci.PortIO.
func (m *Machine) In32(port uint16) uint32 { return uint32(m.portRead(port, 4)) }

// Out8 implements pci.PortIO.
func (m *Machine) Out8(port uint16, v uint8) { m.portWrite(port, 1, uint64(v)) }

// Out16 implements pci.PortIO.
func (m *Machine) Out16(port uint16, v uint16) { m.portWrite(port, 2, uint64(v)) }

// Out32 implements pci.PortIO.
func (m *Machine) Out32(port uint16, v uint32) { m.portWrite(port, 4, uint64(v)) }

// MapMMIO implements pci.Mapper. The range must lie inside one memory BAR
// as currently programmed; accesses are routed when they happen, so they
// follow the command register's memory enable.
func (m *Machine) MapMMIO(phys, size uint64) (pci.MMIO, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, _, ok := m.findMem(phys, size, false); !ok {
		return nil, fmt.Errorf("pcitest: no memory BAR holds %#x+%#x", phys, size)
	}
	return &mapping{m: m, phys: phys, size: size}, nil
}

// mapping is a pci.MMIO window returned by MapMMIO.
type mapping struct {
	// m is the machine the window is on.
	m *Machine
	// phys and size are the mapped range.
	phys, size uint64
}

func (w *mapping) read(off uint64, width int) uint64 {
	ones := ^uint64(0) >> (64 - 8*width)
	w.m.mu.Lock()
	if off+uint64(width) > w.size {
		w.m.fault("mmio %#x+%#x: read at %#x width %d past the mapping", w.phys, w.size, off, width)
		w.m.mu.Unlock()
		return ones
	}
	r, roff, ok := w.m.findMem(w.phys+off, uint64(width), true)
	if !ok || r == nil {
		w.m.fault("mmio read %#x width %d: no BAR decodes it", w.phys+off, width)
	}
	w.m.mu.Unlock()
	if r == nil {
		return ones
	}
	return r.Read(roff, width)
}

func (w *mapping) write(off uint64, width int, v uint64) {
	w.m.mu.Lock()
	if off+uint64(width) > w.size {
		w.m.fault("mmio %#x+%#x: write at %#x width %d past the mapping", w.phys, w.size, off, width)
		w.m.mu.Unlock()
		return
	}
	r, roff, ok := w.m.findMem(w.phys+off, uint64(width), true)
	if !ok || r == nil {
		w.m.fault("mmio write %#x width %d: no BAR decodes it", w.phys+off, width)
	}
	w.m.mu.Unlock()
	if r != nil {
		r.Write(roff, width, v)
	}
}

// The pci.MMIO methods of a mapping route each access at the time it is
// made.

func (w *mapping) Read8(off uint64) uint8       { return uint8(w.read(off, 1)) }
func (w *mapping) Read16(off uint64) uint16     { return uint16(w.read(off, 2)) }
func (w *mapping) Read32(off uint64) uint32     { return uint32(w.read(off, 4)) }
func (w *mapping) Read64(off uint64) uint64     { return w.read(off, 8) }
func (w *mapping) Write8(off uint64, v uint8)   { w.write(off, 1, uint64(v)) }
func (w *mapping) Write16(off uint64, v uint16) { w.write(off, 2, uint64(v)) }
func (w *mapping) Write32(off uint64, v uint32) { w.write(off, 4, uint64(v)) }
func (w *mapping) Write64(off uint64, v uint64) { w.write(off, 8, v) }
