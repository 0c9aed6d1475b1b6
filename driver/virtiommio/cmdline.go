package virtiommio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadDeviceWord: a virtio_mmio.device= word that does not parse or
// describes an impossible window.
var ErrBadDeviceWord = errors.New("virtiommio: bad virtio_mmio.device word")

// devicePrefix starts each command-line word that describes a device.
const devicePrefix = "virtio_mmio.device="

// Device is where one virtio-mmio device is, as the VMM describes it.
type Device struct {
	// Base is the physical address of the register window.
	Base uint64
	// Size is the window's length in bytes.
	Size uint64
	// IRQ is the I/O APIC input (GSI) the device raises.
	IRQ int
	// ID is the optional platform device ID after a second colon (Linux
	// names the device with it); -1 when absent.
	ID int
	// ACPIPath is the device's name in the ACPI namespace (\_SB_.VR23)
	// when the DSDT described it, else "".
	ACPIPath string
}

// String formats d as its command-line value.
func (d Device) String() string {
	s := fmt.Sprintf("mmio %#x+%#x irq %d", d.Base, d.Size, d.IRQ)
	if d.ID >= 0 {
		s += fmt.Sprintf(" id %d", d.ID)
	}
	if d.ACPIPath != "" {
		s += " acpi " + d.ACPIPath
	}
	return s
}

// maxIRQ bounds the IRQ a word may name: two I/O APICs of 24 inputs each,
// as microvm has with ACPI on.
const maxIRQ = 47

// ParseDevice parses the value of one virtio_mmio.device= word,
// SIZE@BASE:IRQ[:ID], as Linux's virtio_mmio driver does: SIZE is a
// number (0x for hexadecimal) with an optional K, M or G suffix, BASE a
// number, IRQ and ID decimal. The window must hold at least the
// registers before the device configuration (0x100 bytes) and at most
// 4 KiB, and must not wrap the address space.
func ParseDevice(v string) (Device, error) {
	bad := func(why string) (Device, error) {
		return Device{}, fmt.Errorf("%w %q: %s", ErrBadDeviceWord, v, why)
	}
	sizeStr, rest, ok := strings.Cut(v, "@")
	if !ok {
		return bad("no @ between size and base")
	}
	baseStr, irqStr, ok := strings.Cut(rest, ":")
	if !ok {
		return bad("no :IRQ after the base")
	}
	irqStr, idStr, hasID := strings.Cut(irqStr, ":")
	size, err := parseSize(sizeStr)
	if err != nil {
		return bad("size: " + err.Error())
	}
	base, err := strconv.ParseUint(baseStr, 0, 64)
	if err != nil {
		return bad("base: " + err.Error())
	}
	irq, err := strconv.ParseUint(irqStr, 10, 32)
	if err != nil {
		return bad("irq: " + err.Error())
	}
	d := Device{Base: base, Size: size, IRQ: int(irq), ID: -1}
	if hasID {
		id, err := strconv.ParseUint(idStr, 10, 31)
		if err != nil {
			return bad("id: " + err.Error())
		}
		d.ID = int(id)
	}
	if why := d.check(); why != "" {
		return bad(why)
	}
	return d, nil
}

// check says what is impossible about d's window or line, or "".
func (d Device) check() string {
	switch {
	case d.Size < minWindow || d.Size > maxWindow:
		return fmt.Sprintf("window of %d bytes, want %d to %d", d.Size, minWindow, maxWindow)
	case d.Base+d.Size < d.Base:
		return "window wraps the address space"
	case d.Base%4 != 0:
		return "base not 4-byte aligned"
	case d.IRQ <= 0 || d.IRQ > maxIRQ:
		return fmt.Sprintf("irq %d, want 1 to %d", d.IRQ, maxIRQ)
	}
	return ""
}

// parseSize parses a number with an optional K, M or G suffix (binary
// multiples, as Linux's memparse).
func parseSize(s string) (uint64, error) {
	shift := 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift != 0 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, err
	}
	if v > (^uint64(0))>>shift {
		return 0, errors.New("too large")
	}
	return v << shift, nil
}

// DevicesFromArgs returns the devices the virtio_mmio.device= words among
// args describe, in order, skipping duplicates of a base already seen.
// Other words are ignored; a device word that does not parse is an error
// (a device the VMM gave would otherwise vanish silently).
func DevicesFromArgs(args []string) ([]Device, error) {
	var devs []Device
	var errs []error
	seen := map[uint64]bool{}
	for _, a := range args {
		v, ok := strings.CutPrefix(a, devicePrefix)
		if !ok {
			continue
		}
		d, err := ParseDevice(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[d.Base] {
			continue
		}
		seen[d.Base] = true
		devs = append(devs, d)
	}
	return devs, errors.Join(errs...)
}
