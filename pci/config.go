package pci

import "fmt"

// Address names one PCI function.
type Address struct {
	Bus      uint8 // bus number, 0..255
	Device   uint8 // device number on the bus, 0..31
	Function uint8 // function number in the device, 0..7
}

// String formats the address the way lspci does: "bb:dd.f" in hex.
func (a Address) String() string {
	return fmt.Sprintf("%02x:%02x.%x", a.Bus, a.Device, a.Function)
}

// ConfigSpace reads and writes the configuration space of any function.
// Offsets are byte offsets, 4-byte aligned; an implementation ignores the
// low two bits. A read of a function that does not exist returns all ones,
// as the hardware does. Implementations must be safe for concurrent use.
type ConfigSpace interface {
	// Read32 reads the dword at off (0..252 with mechanism #1, up to 4092
	// with enhanced configuration access).
	Read32(a Address, off uint16) uint32
	// Write32 writes the dword at off.
	Write32(a Address, off uint16, v uint32)
}

// NarrowConfigSpace is implemented by config-space mechanisms that can
// access single bytes and words without touching the rest of the dword
// (mechanism #1 can, through ports 0xCFC..0xCFF). The 8- and 16-bit helpers
// use it when it is there; otherwise they fall back to a read-modify-write
// of the dword.
type NarrowConfigSpace interface {
	ConfigSpace
	Read8(a Address, off uint16) uint8
	Read16(a Address, off uint16) uint16
	Write8(a Address, off uint16, v uint8)
	Write16(a Address, off uint16, v uint16)
}

// Configuration header offsets shared by header types 0 and 1
// (PCI 3.0 §6.1, PCI-to-PCI bridge 1.2 §3.2).
const (
	offVendorID      = 0x00
	offDeviceID      = 0x02
	offCommand       = 0x04
	offStatus        = 0x06
	offRevision      = 0x08
	offProgIF        = 0x09
	offSubclass      = 0x0A
	offClass         = 0x0B
	offHeaderType    = 0x0E
	offBAR0          = 0x10
	offCapPointer    = 0x34
	offInterruptLine = 0x3C
	offInterruptPin  = 0x3D

	// Type 0 only.
	offSubsystemVendor = 0x2C
	offSubsystemID     = 0x2E

	// Type 1 (PCI-to-PCI bridge) only.
	offPrimaryBus     = 0x18
	offSecondaryBus   = 0x19
	offSubordinateBus = 0x1A
)

// Header types (low seven bits of the header type register, PCI 3.0 §6.2.1);
// bit 7 marks a multi-function device.
const (
	HeaderTypeNormal  uint8 = 0x00 // type 0: a device
	HeaderTypeBridge  uint8 = 0x01 // type 1: a PCI-to-PCI bridge
	HeaderTypeCardBus uint8 = 0x02 // type 2: a CardBus bridge (not walked)

	headerTypeMask          uint8 = 0x7F
	headerTypeMultiFunction uint8 = 0x80
)

// Command register bits (PCI 3.0 §6.2.2).
const (
	CommandIO           uint16 = 1 << 0  // respond to I/O space accesses
	CommandMemory       uint16 = 1 << 1  // respond to memory space accesses
	CommandBusMaster    uint16 = 1 << 2  // may issue memory requests (DMA, MSI writes)
	CommandINTxDisable  uint16 = 1 << 10 // do not assert INTx
	statusCapabilities  uint16 = 1 << 4  // status: the capability list exists
	maxFunctionsPerDev         = 8
	maxDevicesPerBus           = 32
	legacyConfigSpaceSz        = 256
)

// read8, read16, write8 and write16 implement the narrow helpers on any
// ConfigSpace.

func read8(cs ConfigSpace, a Address, off uint16) uint8 {
	if n, ok := cs.(NarrowConfigSpace); ok {
		return n.Read8(a, off)
	}
	return uint8(cs.Read32(a, off&^3) >> (8 * (off & 3)))
}

func read16(cs ConfigSpace, a Address, off uint16) uint16 {
	if n, ok := cs.(NarrowConfigSpace); ok && off&1 == 0 {
		return n.Read16(a, off)
	}
	if off&3 == 3 {
		// A word that straddles two dwords: PCI never lays a register out
		// that way, but be exact anyway.
		return uint16(read8(cs, a, off)) | uint16(read8(cs, a, off+1))<<8
	}
	return uint16(cs.Read32(a, off&^3) >> (8 * (off & 3)))
}

// rw1cMask returns the bits of the dword at off that must be written as
// zero in a read-modify-write: the status register (offset 6) has
// write-one-to-clear error bits, and writing back what was read would clear
// them behind the owner's back.
func rw1cMask(off uint16) uint32 {
	if off&^3 == offCommand {
		return 0xFFFF0000
	}
	return 0
}

func write8(cs ConfigSpace, a Address, off uint16, v uint8) {
	if n, ok := cs.(NarrowConfigSpace); ok {
		n.Write8(a, off, v)
		return
	}
	shift := 8 * (off & 3)
	d := cs.Read32(a, off&^3) &^ rw1cMask(off)
	d = d&^(0xFF<<shift) | uint32(v)<<shift
	cs.Write32(a, off&^3, d)
}

func write16(cs ConfigSpace, a Address, off uint16, v uint16) {
	if n, ok := cs.(NarrowConfigSpace); ok && off&1 == 0 {
		n.Write16(a, off, v)
		return
	}
	if off&3 == 3 {
		write8(cs, a, off, uint8(v))
		write8(cs, a, off+1, uint8(v>>8))
		return
	}
	shift := 8 * (off & 3)
	d := cs.Read32(a, off&^3) &^ rw1cMask(off)
	d = d&^(0xFFFF<<shift) | uint32(v)<<shift
	cs.Write32(a, off&^3, d)
}
