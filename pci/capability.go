package pci

import "fmt"

// Capability IDs this package knows (PCI Code and ID Assignment
// Specification §2).
const (
	CapMSI            uint8 = 0x05
	CapVendorSpecific uint8 = 0x09
	CapPCIExpress     uint8 = 0x10
	CapMSIX           uint8 = 0x11
)

// Capability is one entry of a function's capability list.
type Capability struct {
	// ID is the capability ID (CapMSI, CapMSIX, CapVendorSpecific...).
	ID uint8
	// Offset is where the capability starts in configuration space.
	Offset uint16
}

// Capability list bounds: entries live after the 64-byte header in the
// 256-byte legacy configuration space, dword aligned (PCI 3.0 §6.7).
const (
	capFirst  = 0x40
	capLast   = legacyConfigSpaceSz - 4
	capMaxNum = (legacyConfigSpaceSz - capFirst) / 4 // a list without repeats cannot be longer
)

// Capabilities walks the capability list. A function without one returns
// an empty list. A pointer into the header or past the end, or a list that
// comes back to an entry it has visited, is an error; the entries read
// before the fault are returned with it.
func (d *Device) Capabilities() ([]Capability, error) {
	st := d.Status()
	if st == 0xFFFF {
		return nil, fmt.Errorf("%v: status: %w", d.Addr, ErrAllOnes)
	}
	if st&statusCapabilities == 0 {
		return nil, nil
	}
	var (
		out  []Capability
		seen [legacyConfigSpaceSz / 4]bool
	)
	// The bottom two bits of every pointer are reserved and must be
	// masked (PCI 3.0 §6.7).
	ptr := uint16(d.Read8(offCapPointer)) &^ 3
	for ptr != 0 {
		if ptr < capFirst || ptr > capLast {
			return out, fmt.Errorf("%v: capability pointer %#02x after %d entries: %w", d.Addr, ptr, len(out), ErrBadCapabilityPointer)
		}
		if seen[ptr/4] || len(out) >= capMaxNum {
			return out, fmt.Errorf("%v: capability at %#02x visited twice: %w", d.Addr, ptr, ErrCapabilityLoop)
		}
		seen[ptr/4] = true
		hdr := d.Read16(ptr)
		if hdr == 0xFFFF {
			return out, fmt.Errorf("%v: capability at %#02x: %w", d.Addr, ptr, ErrAllOnes)
		}
		out = append(out, Capability{ID: uint8(hdr), Offset: ptr})
		ptr = uint16(hdr>>8) &^ 3
	}
	return out, nil
}

// FindCapability returns the first capability with the given ID, or an
// error wrapping ErrNoCapability (or the list's own error).
func (d *Device) FindCapability(id uint8) (Capability, error) {
	caps, err := d.Capabilities()
	for _, c := range caps {
		if c.ID == id {
			return c, nil
		}
	}
	if err != nil {
		return Capability{}, err
	}
	return Capability{}, fmt.Errorf("%v: capability %#02x: %w", d.Addr, id, ErrNoCapability)
}

// VendorCapability is a vendor-specific capability (ID 0x09): after the ID
// and next pointer, a length byte, then vendor-defined contents.
type VendorCapability struct {
	// Offset is where the capability starts in configuration space.
	Offset uint16
	// Len is the capability's length in bytes, header included, as the
	// length byte says; checked to lie inside configuration space.
	Len uint8
}

// vendorCapLenOff is the offset of the length byte in a vendor capability.
const vendorCapLenOff = 2

// VendorCapabilities returns every vendor-specific capability. One whose
// length is shorter than its own header or runs past the configuration
// space is an error.
func (d *Device) VendorCapabilities() ([]VendorCapability, error) {
	caps, err := d.Capabilities()
	if err != nil {
		return nil, err
	}
	var out []VendorCapability
	for _, c := range caps {
		if c.ID != CapVendorSpecific {
			continue
		}
		n := d.Read8(c.Offset + vendorCapLenOff)
		if n < vendorCapLenOff+1 || int(c.Offset)+int(n) > legacyConfigSpaceSz {
			return out, fmt.Errorf("%v: vendor capability at %#02x has length %d: %w", d.Addr, c.Offset, n, ErrBadCapability)
		}
		out = append(out, VendorCapability{Offset: c.Offset, Len: n})
	}
	return out, nil
}

// Read8 reads the byte at off inside the capability; off must be below Len.
func (v VendorCapability) Read8(d *Device, off uint8) (uint8, error) {
	if err := v.check(d, off, 1); err != nil {
		return 0, err
	}
	return d.Read8(v.Offset + uint16(off)), nil
}

// Read16 reads the little-endian word at off inside the capability.
func (v VendorCapability) Read16(d *Device, off uint8) (uint16, error) {
	if err := v.check(d, off, 2); err != nil {
		return 0, err
	}
	return d.Read16(v.Offset + uint16(off)), nil
}

// Read32 reads the little-endian dword at off inside the capability.
// Config space is only reachable by aligned dwords, so an unaligned off is
// read byte by byte.
func (v VendorCapability) Read32(d *Device, off uint8) (uint32, error) {
	if err := v.check(d, off, 4); err != nil {
		return 0, err
	}
	o := v.Offset + uint16(off)
	if o&3 == 0 {
		return d.Read32(o), nil
	}
	return uint32(d.Read16(o)) | uint32(d.Read16(o+2))<<16, nil
}

func (v VendorCapability) check(d *Device, off uint8, n int) error {
	if int(off)+n > int(v.Len) {
		return fmt.Errorf("%v: vendor capability at %#02x: %d bytes at %d past its length %d: %w", d.Addr, v.Offset, n, off, v.Len, ErrOutOfRange)
	}
	return nil
}
