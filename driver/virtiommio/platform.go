package virtiommio

import "github.com/govirtio/govirtio/driver/virtio"

// Registers accesses the device's register window at byte offsets from
// its base: uncached, in order, little-endian. The runtime's register
// mappings implement it.
type Registers interface {
	Read8(off uint64) uint8
	Read16(off uint64) uint16
	Read32(off uint64) uint32
	Write8(off uint64, v uint8)
	Write16(off uint64, v uint16)
	Write32(off uint64, v uint32)
}

// Mapper makes a device's register window reachable.
type Mapper interface {
	// MapRegisters maps size bytes of registers at physical address phys.
	MapRegisters(phys, size uint64) (Registers, error)
}

// LineInterrupter provides the device's interrupt line. The runtime
// implements it by routing the I/O APIC input, level-triggered and active
// high, to a vector.
type LineInterrupter interface {
	// LineInterrupt returns the Interrupt for I/O APIC input gsi. The line
	// is level-triggered: the platform masks it when it fires. If the
	// Interrupt is also a Rearmer, the transport calls Rearm once it has
	// acknowledged the device (which deasserts the line).
	LineInterrupt(gsi int) (virtio.Interrupt, error)
}

// Rearmer is implemented by line interrupts that stay masked after firing
// until told otherwise.
type Rearmer interface {
	// Rearm unmasks the line.
	Rearm() error
}

// Platform is how the transport reaches the machine.
type Platform struct {
	// Mapper maps the register window.
	Mapper Mapper
	// Lines provides the interrupt line; nil means Interrupts fails.
	Lines LineInterrupter
}
