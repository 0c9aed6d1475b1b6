package pcitest

import (
	"encoding/binary"

	"github.com/govirtio/govirtio/pci"
)

// BAR describes one BAR of a fake function.
type BAR struct {
	// Kind is the address space; pci.BARNone leaves the register
	// unimplemented. A pci.BARMem64 BAR also takes the next register.
	Kind pci.BARKind
	// Size is the decoded size, a power of two (at least 4 for I/O, 16
	// for memory).
	Size uint64
	// Addr is the address firmware assigned (0: unassigned).
	Addr uint64
	// Prefetchable marks prefetchable memory.
	Prefetchable bool
	// Region receives accesses to the BAR; nil reads all ones.
	Region Region
}

// Cap is one capability to place in the capability list.
type Cap struct {
	// ID is the capability ID.
	ID uint8
	// Body is the capability's contents after the ID and next pointer.
	Body []byte
	// Writable masks the bits of Body that the driver can write; nil
	// makes the whole body read-only.
	Writable []byte
}

// Spec describes a fake function.
type Spec struct {
	// VendorID and DeviceID identify the function.
	VendorID, DeviceID uint16
	// Class, Subclass, ProgIF and Revision fill the class code.
	Class, Subclass, ProgIF, Revision uint8
	// SubsystemVendorID and SubsystemID fill the subsystem registers of a
	// type 0 header.
	SubsystemVendorID, SubsystemID uint16
	// MultiFunction sets bit 7 of the header type (on function 0).
	MultiFunction bool
	// Bridge makes a type 1 header with these bus numbers.
	Bridge bool
	// Primary, Secondary and Subordinate are a bridge's bus numbers.
	Primary, Secondary, Subordinate uint8
	// BARs are the function's BARs by register index (6 for a device, 2
	// for a bridge).
	BARs []BAR
	// Caps are laid out from offset 0x40 in order, each dword aligned.
	Caps []Cap
	// InterruptLine and InterruptPin fill the interrupt registers.
	InterruptLine, InterruptPin uint8
	// Command is the command register's initial value.
	Command uint16
}

// barReg is the emulation state of one BAR register.
type barReg struct {
	// kind is the BAR's kind on its lower register; pci.BARNone on an
	// unimplemented register or the upper half of a 64-bit BAR.
	kind pci.BARKind
	// mask is the address bits the register stores.
	mask uint32
	// flags are the read-only low bits (space, type, prefetchable).
	flags uint32
}

// Function is a fake PCI function. Its state is guarded by the Machine it
// is added to.
type Function struct {
	// cfg is the configuration space.
	cfg [256]byte
	// wmask marks the bits the driver may write.
	wmask [256]byte
	// bars is the emulation state of each BAR register.
	bars [6]barReg
	// regions receive accesses to each BAR; a 64-bit BAR's region is at
	// its lower index.
	regions [6]Region
	// capOffsets are where each Spec.Caps entry was placed.
	capOffsets []uint16
	// machine is set when the function is added to a Machine.
	machine *Machine

	// sizedWhileDecoding counts all-ones BAR writes while the command
	// register had I/O or memory decoding on.
	sizedWhileDecoding int
	// configWrites counts configuration writes to the function.
	configWrites int
}

// Command register bits the fake lets a driver write: I/O, memory, bus
// master, INTx disable.
const writableCommand = 0x0407

// NewFunction builds a function from s.
func NewFunction(s Spec) *Function {
	f := &Function{}
	le := binary.LittleEndian
	le.PutUint16(f.cfg[0x00:], s.VendorID)
	le.PutUint16(f.cfg[0x02:], s.DeviceID)
	le.PutUint16(f.cfg[0x04:], s.Command)
	le.PutUint16(f.wmask[0x04:], writableCommand)
	f.cfg[0x08] = s.Revision
	f.cfg[0x09] = s.ProgIF
	f.cfg[0x0A] = s.Subclass
	f.cfg[0x0B] = s.Class
	f.cfg[0x3C] = s.InterruptLine
	f.wmask[0x3C] = 0xFF
	f.cfg[0x3D] = s.InterruptPin
	if s.Bridge {
		f.cfg[0x0E] = pci.HeaderTypeBridge
		f.cfg[0x18] = s.Primary
		f.cfg[0x19] = s.Secondary
		f.cfg[0x1A] = s.Subordinate
		f.wmask[0x18], f.wmask[0x19], f.wmask[0x1A] = 0xFF, 0xFF, 0xFF
	} else {
		le.PutUint16(f.cfg[0x2C:], s.SubsystemVendorID)
		le.PutUint16(f.cfg[0x2E:], s.SubsystemID)
	}
	if s.MultiFunction {
		f.cfg[0x0E] |= 0x80
	}
	for i, b := range s.BARs {
		f.setBAR(i, b)
	}
	off := uint16(0x40)
	prev := uint16(0x34)
	for _, c := range s.Caps {
		f.cfg[prev] = byte(off)
		f.cfg[off] = c.ID
		copy(f.cfg[off+2:], c.Body)
		for j, m := range c.Writable {
			f.wmask[int(off)+2+j] = m
		}
		f.capOffsets = append(f.capOffsets, off)
		prev = off + 1
		off += (2 + uint16(len(c.Body)) + 3) &^ 3
	}
	if len(s.Caps) > 0 {
		f.cfg[0x06] |= 1 << 4 // status: capability list
	}
	return f
}

func (f *Function) setBAR(i int, b BAR) {
	if i >= len(f.bars) {
		return
	}
	f.regions[i] = b.Region
	switch b.Kind {
	case pci.BARIO:
		f.bars[i] = barReg{kind: pci.BARIO, mask: ^uint32(b.Size-1) &^ 3, flags: 1}
		f.putBAR(i, uint32(b.Addr))
	case pci.BARMem32, pci.BARMem64:
		r := barReg{kind: pci.BARMem32, mask: ^uint32(b.Size-1) &^ 0xF}
		if b.Prefetchable {
			r.flags |= 1 << 3
		}
		if b.Kind == pci.BARMem64 && i+1 < len(f.bars) {
			r.flags |= 2 << 1
			r.kind = pci.BARMem64
			f.bars[i+1] = barReg{mask: ^uint32((b.Size - 1) >> 32)}
			f.bars[i] = r
			f.putBAR(i, uint32(b.Addr))
			f.putBAR(i+1, uint32(b.Addr>>32))
			return
		}
		f.bars[i] = r
		f.putBAR(i, uint32(b.Addr))
	}
}

// putBAR stores v in BAR register i through the emulation masks.
func (f *Function) putBAR(i int, v uint32) {
	r := f.bars[i]
	binary.LittleEndian.PutUint32(f.cfg[0x10+4*i:], v&r.mask|r.flags)
}

// CapOffset returns where Spec.Caps[i] was placed in configuration space.
func (f *Function) CapOffset(i int) uint16 { return f.capOffsets[i] }

// SetBARRegister overrides the emulation of BAR register i: mask is the
// address bits it stores (what sizing reads back), flags its read-only low
// bits, and v its initial value. It makes malformed BARs for tests; the
// register no longer routes accesses to a region.
func (f *Function) SetBARRegister(i int, mask, flags, v uint32) {
	f.lock()
	defer f.unlock()
	f.bars[i] = barReg{mask: mask, flags: flags}
	f.putBAR(i, v)
}

func (f *Function) lock() {
	if f.machine != nil {
		f.machine.mu.Lock()
	}
}

func (f *Function) unlock() {
	if f.machine != nil {
		f.machine.mu.Unlock()
	}
}

// Poke8 writes configuration space directly, ignoring write masks and
// emulation: tests use it to corrupt capability lists and the like.
func (f *Function) Poke8(off uint16, v uint8) {
	f.lock()
	defer f.unlock()
	f.cfg[off] = v
}

// Poke16 is Poke8 for a little-endian word.
func (f *Function) Poke16(off uint16, v uint16) {
	f.lock()
	defer f.unlock()
	binary.LittleEndian.PutUint16(f.cfg[off:], v)
}

// Poke32 is Poke8 for a little-endian dword.
func (f *Function) Poke32(off uint16, v uint32) {
	f.lock()
	defer f.unlock()
	binary.LittleEndian.PutUint32(f.cfg[off:], v)
}

// Peek16 reads a configuration word directly.
func (f *Function) Peek16(off uint16) uint16 {
	f.lock()
	defer f.unlock()
	return binary.LittleEndian.Uint16(f.cfg[off:])
}

// Peek32 reads a configuration dword directly.
func (f *Function) Peek32(off uint16) uint32 {
	f.lock()
	defer f.unlock()
	return binary.LittleEndian.Uint32(f.cfg[off:])
}

// SizedWhileDecoding counts BAR sizing writes (all ones) made while the
// command register had decoding on: a driver bug on real hardware.
func (f *Function) SizedWhileDecoding() int {
	f.lock()
	defer f.unlock()
	return f.sizedWhileDecoding
}

// ConfigWrites counts configuration writes to the function.
func (f *Function) ConfigWrites() int {
	f.lock()
	defer f.unlock()
	return f.configWrites
}

func (f *Function) numBARs() int {
	if f.cfg[0x0E]&0x7F == pci.HeaderTypeBridge {
		return 2
	}
	return 6
}

func (f *Function) command() uint16 { return binary.LittleEndian.Uint16(f.cfg[0x04:]) }

// read32 and write32 run with the machine locked.
func (f *Function) read32(off uint16) uint32 {
	return binary.LittleEndian.Uint32(f.cfg[off&^3:])
}

func (f *Function) write32(off uint16, v uint32) {
	off &^= 3
	f.configWrites++
	if off >= 0x10 && off < 0x10+4*uint16(f.numBARs()) {
		i := int(off-0x10) / 4
		if v == 0xFFFFFFFF && f.command()&(uint16(pci.CommandIO|pci.CommandMemory)) != 0 {
			f.sizedWhileDecoding++
		}
		f.putBAR(i, v)
		return
	}
	old := binary.LittleEndian.Uint32(f.cfg[off:])
	m := binary.LittleEndian.Uint32(f.wmask[off:])
	binary.LittleEndian.PutUint32(f.cfg[off:], old&^m|v&m)
}

// bar returns the decoded address, size and kind of BAR i as currently
// programmed, and whether it is the lower register of a BAR.
func (f *Function) bar(i int) (addr, size uint64, io, ok bool) {
	r := f.bars[i]
	if r.kind == pci.BARNone {
		return 0, 0, false, false
	}
	lo := f.read32(uint16(0x10 + 4*i))
	if r.kind == pci.BARIO {
		m := r.mask | 0xFFFF0000
		return uint64(lo & r.mask), uint64(^m + 1), true, true
	}
	if r.kind == pci.BARMem64 {
		hi := f.read32(uint16(0x10 + 4*(i+1)))
		m := uint64(f.bars[i+1].mask)<<32 | uint64(r.mask)
		return uint64(hi)<<32 | uint64(lo&r.mask), ^m + 1, false, true
	}
	return uint64(lo & r.mask), uint64(^r.mask + 1), false, true
}
