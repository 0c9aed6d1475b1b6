package virtiopci

import (
	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/pci"
)

// MSIAllocator hands out message-signalled interrupt vectors. The runtime
// implements it: it reserves a CPU vector, composes the MSI address and
// data that target it (Intel SDM vol. 3A §11.11), and returns the
// Interrupt that a goroutine waits on.
type MSIAllocator interface {
	// AllocMSI reserves one vector. The device raises it by writing data
	// to addr. Vectors are never freed: a device keeps its vectors for
	// the life of the program.
	AllocMSI() (addr uint64, data uint32, irq virtio.Interrupt, err error)
}

// LineInterrupter provides legacy INTx interrupts. The runtime implements
// it by routing the line through the I/O APIC.
type LineInterrupter interface {
	// LineInterrupt returns the Interrupt for the given line (the PCI
	// interrupt line register, as firmware routed it). Several devices
	// may share a line, and a line is level-triggered: the platform masks
	// it when it fires. If the Interrupt is also a Rearmer, the transport
	// calls Rearm once it has read the device's ISR (which deasserts the
	// line); otherwise the platform unmasks the line when Wait is called
	// again, which the transport does only after reading the ISR.
	LineInterrupt(line uint8) (virtio.Interrupt, error)
}

// Rearmer is implemented by line interrupts that stay masked after firing
// until told otherwise.
type Rearmer interface {
	// Rearm unmasks the line.
	Rearm() error
}

// Platform is how the transport reaches the machine.
type Platform struct {
	// IO performs port I/O: needed for I/O BARs (the legacy interface).
	IO pci.PortIO
	// Mapper maps memory BARs: needed for the modern interface and MSI-X.
	Mapper pci.Mapper
	// MSI allocates MSI-X vectors; nil means INTx only.
	MSI MSIAllocator
	// Lines provides INTx interrupts; nil means MSI-X only.
	Lines LineInterrupter
}
