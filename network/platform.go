package network

import (
	"context"
	"fmt"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiommio"
	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/runtime/irq"
	"github.com/govirtio/govirtio/runtime/machine"
)

// platform is the machine as the virtio PCI transport wants it.
func platform() virtiopci.Platform {
	return virtiopci.Platform{
		IO:     machine.Ports{},
		Mapper: mapper{},
		MSI:    msiAllocator{},
		Lines:  lineInterrupter{},
	}
}

// mapper maps BARs with machine.MapRegisters.
type mapper struct{}

func (mapper) MapMMIO(phys, size uint64) (pci.MMIO, error) {
	return machine.MapRegisters(phys, size)
}

// msiAllocator hands out MSI vectors from runtime/irq.
type msiAllocator struct{}

func (msiAllocator) AllocMSI() (uint64, uint32, virtio.Interrupt, error) {
	l, err := irq.AllocMSI()
	if err != nil {
		return 0, 0, nil, err
	}
	addr, data := l.MSIMessage()
	return addr, data, msiInterrupt{l}, nil
}

type msiInterrupt struct{ l *irq.Line }

func (m msiInterrupt) Wait(ctx context.Context) error {
	_, err := m.l.Wait(ctx)
	return err
}

// lineInterrupter routes PCI INTx lines through the I/O APIC. The line
// register holds the IRQ the firmware routed the pin to; on QEMU's pc
// machine that is also the I/O APIC input (GSI).
type lineInterrupter struct{}

func (lineInterrupter) LineInterrupt(line uint8) (virtio.Interrupt, error) {
	if line == 0 || line == 0xff {
		return nil, fmt.Errorf("network: device has no INTx line routed (line register %#x)", line)
	}
	l, err := irq.INTx(int(line))
	if err != nil {
		return nil, err
	}
	return intxInterrupt{l}, nil
}

// mmioPlatform is the machine as the virtio-mmio transport wants it.
func mmioPlatform() virtiommio.Platform {
	return virtiommio.Platform{Mapper: registerMapper{}, Lines: levelInterrupter{}}
}

// registerMapper maps register windows with machine.MapRegisters.
type registerMapper struct{}

func (registerMapper) MapRegisters(phys, size uint64) (virtiommio.Registers, error) {
	r, err := machine.MapRegisters(phys, size)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// levelInterrupter routes a virtio-mmio device's line through the I/O
// APIC: level-triggered and active high, as QEMU's microvm describes it.
type levelInterrupter struct{}

func (levelInterrupter) LineInterrupt(gsi int) (virtio.Interrupt, error) {
	l, err := irq.Level(gsi)
	if err != nil {
		return nil, err
	}
	return intxInterrupt{l}, nil
}

// intxInterrupt is a level-triggered line: the kernel masks it when it
// fires, and the transport calls Rearm (virtiopci.Rearmer) once it has
// read the ISR, which deasserts the line.
type intxInterrupt struct{ l *irq.Line }

func (i intxInterrupt) Wait(ctx context.Context) error {
	_, err := i.l.Wait(ctx)
	return err
}

func (i intxInterrupt) Rearm() error { return i.l.Rearm() }
