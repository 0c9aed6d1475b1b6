package virtiommio

import (
	"errors"
	"fmt"
)

// ACPIHardwareID is the _HID ACPI firmware gives a virtio-mmio transport
// (Linaro's ID, the one Linux's virtio_mmio driver matches): QEMU's
// microvm declares one Device with it per transport that has a device
// plugged in, with a Memory32Fixed window and one level-triggered,
// active-high Extended Interrupt in its _CRS.
const ACPIHardwareID = "LNRO0005"

// ErrBadACPIDevice: an ACPI device with ACPIHardwareID whose resources do
// not describe a usable virtio-mmio transport.
var ErrBadACPIDevice = errors.New("virtiommio: bad ACPI description")

// ACPIDevice is what the firmware says of one transport, as read from its
// _CRS by the caller (package acpi): memory windows and interrupt lines.
type ACPIDevice struct {
	Path       string // its namespace path, for messages
	Windows    []ACPIWindow
	Interrupts []ACPIInterrupt
}

// ACPIWindow is one memory window of an ACPIDevice.
type ACPIWindow struct{ Base, Size uint64 }

// ACPIInterrupt is one interrupt of an ACPIDevice: a GSI and how the line
// is driven.
type ACPIInterrupt struct {
	GSI       uint32
	Level     bool
	ActiveLow bool
}

// DeviceFromACPI checks what the firmware says of a transport as
// ParseDevice checks a command-line word, and more: exactly one window and
// one interrupt, the interrupt level-triggered and active high (the only
// kind the platform's LineInterrupter provides).
func DeviceFromACPI(a ACPIDevice) (Device, error) {
	bad := func(why string) (Device, error) {
		return Device{}, fmt.Errorf("%w of %s: %s", ErrBadACPIDevice, a.Path, why)
	}
	if len(a.Windows) != 1 || len(a.Interrupts) != 1 {
		return bad(fmt.Sprintf("%d memory windows and %d interrupts, want one of each", len(a.Windows), len(a.Interrupts)))
	}
	w, irq := a.Windows[0], a.Interrupts[0]
	if !irq.Level || irq.ActiveLow {
		return bad(fmt.Sprintf("interrupt %d is not level-triggered and active high", irq.GSI))
	}
	if irq.GSI > maxIRQ {
		return bad(fmt.Sprintf("irq %d, want 1 to %d", irq.GSI, maxIRQ))
	}
	d := Device{Base: w.Base, Size: w.Size, IRQ: int(irq.GSI), ID: -1, ACPIPath: a.Path}
	if why := d.check(); why != "" {
		return bad(why)
	}
	return d, nil
}
