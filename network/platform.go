package network

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiommio"
	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/runtime/acpi"
	"github.com/govirtio/govirtio/runtime/irq"
	"github.com/govirtio/govirtio/runtime/kernel"
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

// mmioFromACPI lists the virtio-mmio transports the firmware's definition
// blocks (the DSDT, then any SSDTs) declare with virtiommio's ACPI hardware
// ID, each checked by virtiommio.DeviceFromACPI. A machine without ACPI
// tables (QEMU's microvm with acpi=off) has none, which is not an error;
// a transport the tables describe badly is reported and left out.
func mmioFromACPI() ([]virtiommio.Device, error) {
	var devs []virtiommio.Device
	var errs []error
	for _, sig := range []string{"DSDT", "SSDT"} {
		for i := 0; ; i++ {
			t, err := kernel.ACPITable(sig, i)
			if errors.Is(err, kernel.ErrNoACPITable) || errors.Is(err, syscall.ENOSYS) {
				break // none (ENOSYS: not under the govirtio kernel)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("ACPI %s %d: %w", sig, i, err))
				break
			}
			d, err := mmioFromTable(t)
			devs = append(devs, d...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return devs, errors.Join(errs...)
}

// mmioFromTable lists the virtio-mmio transports one definition block
// declares.
func mmioFromTable(t []byte) ([]virtiommio.Device, error) {
	scan, err := acpi.Devices(t)
	if err != nil {
		return nil, err
	}
	var devs []virtiommio.Device
	var errs []error
	for _, d := range scan.ByHID(virtiommio.ACPIHardwareID) {
		switch {
		case d.CRSMethod:
			errs = append(errs, fmt.Errorf("%w of %s: _CRS is a method, which needs an AML interpreter", virtiommio.ErrBadACPIDevice, d.Path))
			continue
		case d.CRSErr != nil:
			errs = append(errs, fmt.Errorf("%w of %s: %w", virtiommio.ErrBadACPIDevice, d.Path, d.CRSErr))
			continue
		}
		a := virtiommio.ACPIDevice{Path: d.Path}
		for _, m := range d.Resources.Memory {
			a.Windows = append(a.Windows, virtiommio.ACPIWindow{Base: m.Base, Size: m.Length})
		}
		for _, irq := range d.Resources.Interrupts {
			// An ISA IRQ is its GSI unless the MADT overrides it, which
			// VMMs do only for the timer's IRQ 0.
			a.Interrupts = append(a.Interrupts, virtiommio.ACPIInterrupt{GSI: irq.Number, Level: irq.Level, ActiveLow: irq.ActiveLow})
		}
		dev, err := virtiommio.DeviceFromACPI(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		devs = append(devs, dev)
	}
	return devs, errors.Join(errs...)
}
