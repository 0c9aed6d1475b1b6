package pci

import "fmt"

// MSI capability layout (PCI 3.0 §6.8.1): message control at +2, message
// address at +4, then (64-bit capable) upper address at +8 and data at
// +12, else data at +8; mask bits follow the data when per-vector masking
// is capable.
const (
	msiControlOff       = 2
	msiAddrOff          = 4
	msiEnable           = 1 << 0
	msiMultiCapShift    = 1
	msiMultiEnableShift = 4
	msiMultiMask        = 7
	msi64Bit            = 1 << 7
	msiPerVectorMask    = 1 << 8
)

// MSI is a function's MSI capability. Only single-message MSI is
// programmed (Multiple Message Enable 0): that is what a driver that also
// speaks MSI-X needs, and multi-message MSI needs contiguous vectors the
// platform rarely has.
type MSI struct {
	// dev is the function the capability belongs to.
	dev *Device
	// off is the capability's offset in configuration space.
	off uint16
	// is64 reports a 64-bit message address.
	is64 bool
	// perVectorMask reports the mask and pending registers.
	perVectorMask bool
	// vectors is how many messages the function can use (1..32).
	vectors int
}

// MSI finds and decodes the MSI capability.
func (d *Device) MSI() (*MSI, error) {
	c, err := d.FindCapability(CapMSI)
	if err != nil {
		return nil, err
	}
	ctl := d.Read16(c.Offset + msiControlOff)
	if ctl == 0xFFFF {
		return nil, fmt.Errorf("%v: MSI control: %w", d.Addr, ErrAllOnes)
	}
	m := &MSI{
		dev:           d,
		off:           c.Offset,
		is64:          ctl&msi64Bit != 0,
		perVectorMask: ctl&msiPerVectorMask != 0,
		vectors:       1 << ((ctl >> msiMultiCapShift) & msiMultiMask),
	}
	if m.vectors > 32 {
		return nil, fmt.Errorf("%v: MSI multiple message capable %d: %w", d.Addr, (ctl>>msiMultiCapShift)&msiMultiMask, ErrBadCapability)
	}
	if end := int(c.Offset) + m.size(); end > legacyConfigSpaceSz {
		return nil, fmt.Errorf("%v: MSI capability at %#02x runs past config space: %w", d.Addr, c.Offset, ErrBadCapability)
	}
	return m, nil
}

// size is the capability's length in bytes.
func (m *MSI) size() int {
	n := 12
	if m.is64 {
		n += 4
	}
	if m.perVectorMask {
		n += 8
	}
	return n
}

func (m *MSI) dataOff() uint16 {
	if m.is64 {
		return m.off + 12
	}
	return m.off + 8
}

func (m *MSI) maskOff() uint16 { return m.dataOff() + 4 }

// Is64Bit reports whether the function can send to a 64-bit address.
func (m *MSI) Is64Bit() bool { return m.is64 }

// Vectors is how many messages the function asks for.
func (m *MSI) Vectors() int { return m.vectors }

// Program sets the message address and data. The address must be dword
// aligned, and below 4 GiB unless the function is 64-bit capable.
func (m *MSI) Program(addr uint64, data uint16) error {
	if addr&3 != 0 {
		return fmt.Errorf("%v: MSI address %#x not dword aligned: %w", m.dev.Addr, addr, ErrOutOfRange)
	}
	if !m.is64 && addr>>32 != 0 {
		return fmt.Errorf("%v: MSI address %#x above 4 GiB on a 32-bit capability: %w", m.dev.Addr, addr, ErrOutOfRange)
	}
	m.dev.Write32(m.off+msiAddrOff, uint32(addr))
	if m.is64 {
		m.dev.Write32(m.off+msiAddrOff+4, uint32(addr>>32))
	}
	m.dev.Write16(m.dataOff(), data)
	// One message: Multiple Message Enable = 0.
	ctl := m.dev.Read16(m.off + msiControlOff)
	m.dev.Write16(m.off+msiControlOff, ctl&^(msiMultiMask<<msiMultiEnableShift))
	return nil
}

// Address and Data read back the programmed message.
func (m *MSI) Address() uint64 {
	a := uint64(m.dev.Read32(m.off + msiAddrOff))
	if m.is64 {
		a |= uint64(m.dev.Read32(m.off+msiAddrOff+4)) << 32
	}
	return a
}

// Data reads back the programmed message data.
func (m *MSI) Data() uint16 { return m.dev.Read16(m.dataOff()) }

// SetEnabled turns MSI on or off. Turning it on also disables INTx, which
// a function must not use together with MSI.
func (m *MSI) SetEnabled(on bool) {
	ctl := m.dev.Read16(m.off + msiControlOff)
	if on {
		m.dev.SetINTx(false)
		ctl |= msiEnable
	} else {
		ctl &^= msiEnable
	}
	m.dev.Write16(m.off+msiControlOff, ctl)
}

// Enabled reports whether MSI is on.
func (m *MSI) Enabled() bool { return m.dev.Read16(m.off+msiControlOff)&msiEnable != 0 }

// SetMasked masks or unmasks vector v. It needs per-vector masking.
func (m *MSI) SetMasked(v int, masked bool) error {
	if !m.perVectorMask {
		return fmt.Errorf("%v: MSI without per-vector masking: %w", m.dev.Addr, ErrNoCapability)
	}
	if v < 0 || v >= m.vectors {
		return fmt.Errorf("%v: MSI vector %d of %d: %w", m.dev.Addr, v, m.vectors, ErrOutOfRange)
	}
	bits := m.dev.Read32(m.maskOff())
	if masked {
		bits |= 1 << v
	} else {
		bits &^= 1 << v
	}
	m.dev.Write32(m.maskOff(), bits)
	return nil
}
