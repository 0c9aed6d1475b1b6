package pci

import "errors"

// Sentinel errors, matched with errors.Is. The errors returned wrap one of
// them with the function's address and what was read.
var (
	// ErrNoDevice: the function reads as all ones (absent or gone).
	ErrNoDevice = errors.New("pci: no device")
	// ErrAllOnes: a register read all ones where a present function
	// cannot have that value; the function probably went away.
	ErrAllOnes = errors.New("pci: register reads all ones")
	// ErrCapabilityLoop: the capability list visits an entry twice.
	ErrCapabilityLoop = errors.New("pci: capability list loops")
	// ErrBadCapabilityPointer: a capability pointer points into the
	// header or past the configuration space.
	ErrBadCapabilityPointer = errors.New("pci: bad capability pointer")
	// ErrBadCapability: a capability's contents are inconsistent
	// (a vendor capability longer than the space, an MSI-X table outside
	// its BAR...).
	ErrBadCapability = errors.New("pci: bad capability")
	// ErrNoCapability: the function has no capability with that ID.
	ErrNoCapability = errors.New("pci: capability not present")
	// ErrBadBAR: a BAR decodes to something impossible (reserved type,
	// non power-of-two size, past its address space, misaligned).
	ErrBadBAR = errors.New("pci: bad BAR")
	// ErrBARUnassigned: a BAR has no address assigned.
	ErrBARUnassigned = errors.New("pci: BAR not assigned")
	// ErrBadBridge: a bridge's bus numbers are inconsistent (secondary
	// bus not above the primary, or a bus reached twice).
	ErrBadBridge = errors.New("pci: bad bridge bus numbers")
	// ErrBadHeader: an unknown header type.
	ErrBadHeader = errors.New("pci: bad header type")
	// ErrOutOfRange: an argument (BAR index, table entry, offset) out of
	// range.
	ErrOutOfRange = errors.New("pci: out of range")
)
