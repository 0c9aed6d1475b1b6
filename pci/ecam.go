package pci

import "fmt"

// ECAM is ConfigSpace over the PCI Express enhanced configuration access
// mechanism (PCI Express Base Specification §7.2.2): each function's 4 KiB
// configuration space is memory-mapped at
// base + (bus-StartBus)<<20 | device<<15 | function<<12. The base and the
// bus range come from the ACPI MCFG table; QEMU's q35 machine has one.
// Accesses are single memory reads and writes, so no lock is needed.
type ECAM struct {
	// Regs is the mapped window, covering buses StartBus..EndBus.
	Regs MMIO
	// StartBus and EndBus are the bus numbers the window decodes.
	StartBus, EndBus uint8
}

// ecamBusShift etc. place the fields of an ECAM offset.
const (
	ecamBusShift      = 20
	ecamDeviceShift   = 15
	ecamFunctionShift = 12
	ecamSpaceSize     = 4096
)

// NewECAM maps the ECAM window for buses start..end at physical address
// base through m.
func NewECAM(m Mapper, base uint64, start, end uint8) (*ECAM, error) {
	if end < start {
		return nil, fmt.Errorf("pci: ECAM buses %d..%d: %w", start, end, ErrOutOfRange)
	}
	size := (uint64(end) - uint64(start) + 1) << ecamBusShift
	r, err := m.MapMMIO(base, size)
	if err != nil {
		return nil, fmt.Errorf("pci: mapping ECAM at %#x+%#x: %w", base, size, err)
	}
	return &ECAM{Regs: r, StartBus: start, EndBus: end}, nil
}

// offset returns the window offset of off in a's space, and false when a
// is outside the window or off past 4 KiB.
func (e *ECAM) offset(a Address, off uint16) (uint64, bool) {
	if a.Bus < e.StartBus || a.Bus > e.EndBus || a.Device >= maxDevicesPerBus ||
		a.Function >= maxFunctionsPerDev || off >= ecamSpaceSize {
		return 0, false
	}
	return uint64(a.Bus-e.StartBus)<<ecamBusShift | uint64(a.Device)<<ecamDeviceShift |
		uint64(a.Function)<<ecamFunctionShift | uint64(off), true
}

// Read32 implements ConfigSpace; outside the window it reads all ones.
func (e *ECAM) Read32(a Address, off uint16) uint32 {
	o, ok := e.offset(a, off&^3)
	if !ok {
		return 0xFFFFFFFF
	}
	return e.Regs.Read32(o)
}

// Write32 implements ConfigSpace; outside the window it is dropped.
func (e *ECAM) Write32(a Address, off uint16, v uint32) {
	if o, ok := e.offset(a, off&^3); ok {
		e.Regs.Write32(o, v)
	}
}

// Read8 implements NarrowConfigSpace.
func (e *ECAM) Read8(a Address, off uint16) uint8 {
	o, ok := e.offset(a, off)
	if !ok {
		return 0xFF
	}
	return e.Regs.Read8(o)
}

// Read16 implements NarrowConfigSpace; off must be 2-byte aligned.
func (e *ECAM) Read16(a Address, off uint16) uint16 {
	o, ok := e.offset(a, off&^1)
	if !ok {
		return 0xFFFF
	}
	return e.Regs.Read16(o)
}

// Write8 implements NarrowConfigSpace.
func (e *ECAM) Write8(a Address, off uint16, v uint8) {
	if o, ok := e.offset(a, off); ok {
		e.Regs.Write8(o, v)
	}
}

// Write16 implements NarrowConfigSpace; off must be 2-byte aligned.
func (e *ECAM) Write16(a Address, off uint16, v uint16) {
	if o, ok := e.offset(a, off&^1); ok {
		e.Regs.Write16(o, v)
	}
}
