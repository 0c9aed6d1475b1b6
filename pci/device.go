package pci

import "fmt"

// Device is one PCI function: its address, the configuration space it is
// reached through, and the identification read when it was found.
// The identification fields are a snapshot; registers are read afresh by
// the methods.
type Device struct {
	// Config is the configuration space the function is reached through.
	Config ConfigSpace
	// Addr is the function's bus/device/function address.
	Addr Address

	// VendorID identifies the manufacturer (0x1AF4 for virtio).
	VendorID uint16
	// DeviceID identifies the device within the vendor's range.
	DeviceID uint16
	// Revision is the revision ID register.
	Revision uint8
	// Class, Subclass and ProgIF are the class code (PCI 3.0 appendix D).
	Class    uint8
	Subclass uint8
	ProgIF   uint8
	// HeaderType is the header layout (HeaderTypeNormal, HeaderTypeBridge
	// or HeaderTypeCardBus), without the multi-function bit.
	HeaderType uint8
	// MultiFunction is set on function 0 of a device with several
	// functions.
	MultiFunction bool
	// SubsystemVendorID and SubsystemID (type 0 headers only) identify the
	// board; virtio legacy devices put the device type in SubsystemID.
	SubsystemVendorID uint16
	SubsystemID       uint16
	// InterruptLine is the line firmware routed INTx to (0xFF: none).
	InterruptLine uint8
	// InterruptPin is the INTx pin the function uses: 0 none, 1..4 INTA..D.
	InterruptPin uint8
	// SecondaryBus and SubordinateBus (bridges only) are the first and
	// last bus numbers behind the bridge.
	SecondaryBus   uint8
	SubordinateBus uint8
}

// Open reads the identification of the function at a. It returns
// ErrNoDevice when nothing answers there.
func Open(cs ConfigSpace, a Address) (*Device, error) {
	id := cs.Read32(a, offVendorID)
	if uint16(id) == 0xFFFF || uint16(id) == 0 {
		return nil, fmt.Errorf("%v: vendor %#04x: %w", a, uint16(id), ErrNoDevice)
	}
	d := &Device{Config: cs, Addr: a, VendorID: uint16(id), DeviceID: uint16(id >> 16)}
	classRev := cs.Read32(a, offRevision)
	d.Revision = uint8(classRev)
	d.ProgIF = uint8(classRev >> 8)
	d.Subclass = uint8(classRev >> 16)
	d.Class = uint8(classRev >> 24)
	ht := d.Read8(offHeaderType)
	d.HeaderType = ht & headerTypeMask
	d.MultiFunction = ht&headerTypeMultiFunction != 0
	d.InterruptLine = d.Read8(offInterruptLine)
	d.InterruptPin = d.Read8(offInterruptPin)
	switch d.HeaderType {
	case HeaderTypeNormal:
		d.SubsystemVendorID = d.Read16(offSubsystemVendor)
		d.SubsystemID = d.Read16(offSubsystemID)
	case HeaderTypeBridge:
		d.SecondaryBus = d.Read8(offSecondaryBus)
		d.SubordinateBus = d.Read8(offSubordinateBus)
	case HeaderTypeCardBus:
	default:
		return d, fmt.Errorf("%v: header type %#02x: %w", a, ht, ErrBadHeader)
	}
	return d, nil
}

// String identifies the function for messages: "00:03.0 1af4:1000".
func (d *Device) String() string {
	return fmt.Sprintf("%v %04x:%04x", d.Addr, d.VendorID, d.DeviceID)
}

// Read8 reads a byte of the function's configuration space.
func (d *Device) Read8(off uint16) uint8 { return read8(d.Config, d.Addr, off) }

// Read16 reads a word of the function's configuration space.
func (d *Device) Read16(off uint16) uint16 { return read16(d.Config, d.Addr, off) }

// Read32 reads a dword of the function's configuration space.
func (d *Device) Read32(off uint16) uint32 { return d.Config.Read32(d.Addr, off) }

// Write8 writes a byte of the function's configuration space.
func (d *Device) Write8(off uint16, v uint8) { write8(d.Config, d.Addr, off, v) }

// Write16 writes a word of the function's configuration space.
func (d *Device) Write16(off uint16, v uint16) { write16(d.Config, d.Addr, off, v) }

// Write32 writes a dword of the function's configuration space.
func (d *Device) Write32(off uint16, v uint32) { d.Config.Write32(d.Addr, off, v) }

// Command reads the command register.
func (d *Device) Command() uint16 { return d.Read16(offCommand) }

// SetCommand writes the command register.
func (d *Device) SetCommand(v uint16) { d.Write16(offCommand, v) }

// Status reads the status register.
func (d *Device) Status() uint16 { return d.Read16(offStatus) }

// Enable sets the given command bits (CommandIO, CommandMemory,
// CommandBusMaster...) and leaves the others as they are.
func (d *Device) Enable(bits uint16) { d.SetCommand(d.Command() | bits) }

// Disable clears the given command bits.
func (d *Device) Disable(bits uint16) { d.SetCommand(d.Command() &^ bits) }

// EnableBusMaster lets the function issue memory requests: DMA and MSI
// writes both need it.
func (d *Device) EnableBusMaster() { d.Enable(CommandBusMaster) }

// EnableDecode turns on the decoding of the function's I/O and memory
// BARs.
func (d *Device) EnableDecode() { d.Enable(CommandIO | CommandMemory) }

// SetINTx enables or disables the function's INTx assertion (MSI and MSI-X
// users disable it).
func (d *Device) SetINTx(on bool) {
	if on {
		d.Disable(CommandINTxDisable)
	} else {
		d.Enable(CommandINTxDisable)
	}
}

// numBARs is how many BAR registers the header type has.
func (d *Device) numBARs() int {
	switch d.HeaderType {
	case HeaderTypeNormal:
		return 6
	case HeaderTypeBridge:
		return 2
	}
	return 0
}
