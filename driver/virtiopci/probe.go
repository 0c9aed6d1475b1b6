package virtiopci

import "github.com/govirtio/govirtio/pci"

// PCI identification of virtio functions (virtio 1.2 §4.1.2).
const (
	// VendorID is the PCI vendor ID of every virtio function.
	VendorID uint16 = 0x1AF4
	// Transitional (and legacy) device IDs: the device type is in the
	// subsystem device ID.
	transitionalFirst uint16 = 0x1000
	transitionalLast  uint16 = 0x103F
	// Modern device IDs are modernBase + device type.
	modernBase uint16 = 0x1040
	modernLast uint16 = 0x107F
)

// Device types (virtio 1.2 §5).
const (
	TypeNet     uint16 = 1
	TypeBlock   uint16 = 2
	TypeConsole uint16 = 3
	TypeEntropy uint16 = 4
)

// DeviceType returns the virtio device type of a PCI function and whether
// it is a virtio function at all.
func DeviceType(d *pci.Device) (uint16, bool) {
	if d.VendorID != VendorID {
		return 0, false
	}
	switch {
	case d.DeviceID >= transitionalFirst && d.DeviceID <= transitionalLast:
		return d.SubsystemID, true
	case d.DeviceID >= modernBase && d.DeviceID <= modernLast:
		return d.DeviceID - modernBase, true
	}
	return 0, false
}

// IsTransitional reports a transitional (or legacy-only) device ID: one
// that may have the legacy I/O BAR interface.
func IsTransitional(d *pci.Device) bool {
	return d.VendorID == VendorID && d.DeviceID >= transitionalFirst && d.DeviceID <= transitionalLast
}

// Probe returns the virtio functions of the given device type among devs,
// in order.
func Probe(devs []*pci.Device, deviceType uint16) []*pci.Device {
	var out []*pci.Device
	for _, d := range devs {
		if t, ok := DeviceType(d); ok && t == deviceType && d.HeaderType == pci.HeaderTypeNormal {
			out = append(out, d)
		}
	}
	return out
}
