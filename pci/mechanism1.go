package pci

import "sync"

// PortIO is the x86 I/O port space: the IN and OUT instructions at each
// width. The runtime implements it with IN/OUT on bare metal; tests use a
// fake machine. Implementations must be safe for concurrent use.
type PortIO interface {
	In8(port uint16) uint8
	In16(port uint16) uint16
	In32(port uint16) uint32
	Out8(port uint16, v uint8)
	Out16(port uint16, v uint16)
	Out32(port uint16, v uint32)
}

// Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): an address written to
// CONFIG_ADDRESS selects a dword, CONFIG_DATA then reads or writes it.
const (
	portConfigAddress uint16 = 0xCF8
	portConfigData    uint16 = 0xCFC
	configEnable      uint32 = 1 << 31 // CONFIG_ADDRESS bit 31: enable the config cycle
)

// Mechanism1 is ConfigSpace (and NarrowConfigSpace) over configuration
// mechanism #1, the legacy I/O ports 0xCF8/0xCFC every x86 PC chipset and
// QEMU's pc and q35 machines have. It reaches the first 256 bytes of each
// function only.
type Mechanism1 struct {
	// IO performs the port accesses.
	IO PortIO

	// mu makes the address-then-data pair atomic: both ports are shared
	// by every function on the machine.
	mu sync.Mutex
}

// NewMechanism1 returns configuration mechanism #1 over io.
func NewMechanism1(io PortIO) *Mechanism1 { return &Mechanism1{IO: io} }

// address returns the CONFIG_ADDRESS value for the dword holding off, and
// false when off is past the 256 bytes mechanism #1 can reach or the
// address is out of range.
func mech1Address(a Address, off uint16) (uint32, bool) {
	if off >= legacyConfigSpaceSz || a.Device >= maxDevicesPerBus || a.Function >= maxFunctionsPerDev {
		return 0, false
	}
	return configEnable | uint32(a.Bus)<<16 | uint32(a.Device)<<11 |
		uint32(a.Function)<<8 | uint32(off)&0xFC, true
}

// Read32 implements ConfigSpace. Offsets mechanism #1 cannot reach read as
// all ones, like an absent function.
func (m *Mechanism1) Read32(a Address, off uint16) uint32 {
	addr, ok := mech1Address(a, off)
	if !ok {
		return 0xFFFFFFFF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.IO.Out32(portConfigAddress, addr)
	return m.IO.In32(portConfigData)
}

// Write32 implements ConfigSpace. Writes mechanism #1 cannot reach are
// dropped.
func (m *Mechanism1) Write32(a Address, off uint16, v uint32) {
	addr, ok := mech1Address(a, off)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.IO.Out32(portConfigAddress, addr)
	m.IO.Out32(portConfigData, v)
}

// Read8 implements NarrowConfigSpace: byte n of the dword is at port
// 0xCFC+n.
func (m *Mechanism1) Read8(a Address, off uint16) uint8 {
	addr, ok := mech1Address(a, off)
	if !ok {
		return 0xFF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.IO.Out32(portConfigAddress, addr)
	return m.IO.In8(portConfigData + off&3)
}

// Read16 implements NarrowConfigSpace; off must be 2-byte aligned.
func (m *Mechanism1) Read16(a Address, off uint16) uint16 {
	addr, ok := mech1Address(a, off)
	if !ok {
		return 0xFFFF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.IO.Out32(portConfigAddress, addr)
	return m.IO.In16(portConfigData + off&2)
}

// Write8 implements NarrowConfigSpace.
func (m *Mechanism1) Write8(a Address, off uint16, v uint8) {
	addr, ok := mech1Address(a, off)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.IO.Out32(portConfigAddress, addr)
	m.IO.Out8(portConfigData+off&3, v)
}

// Write16 implements NarrowConfigSpace; off must be 2-byte aligned.
func (m *Mechanism1) Write16(a Address, off uint16, v uint16) {
	addr, ok := mech1Address(a, off)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.IO.Out32(portConfigAddress, addr)
	m.IO.Out16(portConfigData+off&2, v)
}
