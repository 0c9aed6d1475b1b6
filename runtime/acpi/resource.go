package acpi

import "fmt"

// ErrResource: a resource template (a _CRS buffer) whose descriptors run
// past the buffer, are shorter than their type needs, describe an
// impossible window, or lack the End Tag.
const ErrResource = Error("acpi: bad resource template")

// Memory is a fixed window of physical address space a device decodes.
type Memory struct {
	Base   uint64
	Length uint64
}

// Interrupt is one interrupt a device raises.
type Interrupt struct {
	// Number is a GSI for an Extended Interrupt descriptor, an ISA IRQ
	// (which the MADT's overrides may move to another GSI) when ISA is
	// set (an IRQ descriptor).
	Number    uint32
	ISA       bool
	Level     bool // level-triggered, else edge
	ActiveLow bool
	Shared    bool
}

// Resources is what a _CRS resource template says a device uses. Other
// descriptors (I/O ports, DMA, relocatable ranges, vendor data...) are
// skipped.
type Resources struct {
	Memory     []Memory
	Interrupts []Interrupt
}

// Resource descriptor tags (ACPI 6.5 §6.4.2 small, §6.4.3 large).
const (
	smallIRQ           = 0x4
	smallEndTag        = 0xf
	largeMemory32      = 0x05
	largeMemory32Fixed = 0x06
	largeDWordAddress  = 0x07
	largeExtInterrupt  = 0x09
	largeQWordAddress  = 0x0a
	addressMemory      = 0 // address space descriptors' resource type: memory
)

// Bits of the IRQ descriptor's information byte and the Extended
// Interrupt descriptor's flags.
const (
	irqEdge      = 1 << 0 // IRQ: edge (else level)
	irqActiveLow = 1 << 3
	irqShared    = 1 << 4
	extEdge      = 1 << 1 // Extended Interrupt: edge (else level)
	extActiveLow = 1 << 2
	extShared    = 1 << 3
)

// ParseResources reads a resource template: a sequence of descriptors
// ending with an End Tag. Every descriptor's length is checked against the
// buffer and against what its type needs.
func ParseResources(b []byte) (Resources, error) {
	var r Resources
	bad := func(off int, why string) (Resources, error) {
		return Resources{}, fmt.Errorf("%w: offset %d: %s", ErrResource, off, why)
	}
	for i := 0; i < len(b); {
		tag := b[i]
		if tag&0x80 == 0 {
			typ, n := int(tag>>3&0xf), int(tag&7)
			if n > len(b)-i-1 {
				return bad(i, "small descriptor past the end")
			}
			body := b[i+1 : i+1+n]
			switch typ {
			case smallEndTag:
				return r, nil
			case smallIRQ:
				if n < 2 {
					return bad(i, "IRQ descriptor too short")
				}
				info := byte(irqEdge) // no information byte: edge, active high
				if n >= 3 {
					info = body[2]
				}
				mask := le.Uint16(body)
				for irq := uint32(0); irq < 16; irq++ {
					if mask&(1<<irq) != 0 {
						r.Interrupts = append(r.Interrupts, Interrupt{Number: irq, ISA: true,
							Level: info&irqEdge == 0, ActiveLow: info&irqActiveLow != 0, Shared: info&irqShared != 0})
					}
				}
			}
			i += 1 + n
			continue
		}
		if len(b)-i < 3 {
			return bad(i, "large descriptor header past the end")
		}
		typ, n := tag&0x7f, int(le.Uint16(b[i+1:]))
		if n > len(b)-i-3 {
			return bad(i, "large descriptor past the end")
		}
		body := b[i+3 : i+3+n]
		var m Memory
		hasMem := false
		switch typ {
		case largeMemory32Fixed:
			if n < 9 {
				return bad(i, "Memory32Fixed too short")
			}
			m, hasMem = Memory{Base: uint64(le.Uint32(body[1:])), Length: uint64(le.Uint32(body[5:]))}, true
		case largeMemory32:
			if n < 17 {
				return bad(i, "Memory32 too short")
			}
			// Only a range whose minimum and maximum base agree is
			// fixed; others are for an OS to place.
			if lo, hi := le.Uint32(body[1:]), le.Uint32(body[5:]); lo == hi {
				m, hasMem = Memory{Base: uint64(lo), Length: uint64(le.Uint32(body[13:]))}, true
			}
		case largeDWordAddress:
			if n < 23 {
				return bad(i, "DWord address space too short")
			}
			if body[0] == addressMemory {
				m, hasMem = Memory{Base: uint64(le.Uint32(body[7:])), Length: uint64(le.Uint32(body[19:]))}, true
			}
		case largeQWordAddress:
			if n < 43 {
				return bad(i, "QWord address space too short")
			}
			if body[0] == addressMemory {
				m, hasMem = Memory{Base: le.Uint64(body[11:]), Length: le.Uint64(body[35:])}, true
			}
		case largeExtInterrupt:
			if n < 2 {
				return bad(i, "Extended Interrupt too short")
			}
			flags, count := body[0], int(body[1])
			if count == 0 || 2+4*count > n {
				return bad(i, fmt.Sprintf("Extended Interrupt lists %d interrupts in %d bytes", count, n))
			}
			for k := 0; k < count; k++ {
				r.Interrupts = append(r.Interrupts, Interrupt{Number: le.Uint32(body[2+4*k:]),
					Level: flags&extEdge == 0, ActiveLow: flags&extActiveLow != 0, Shared: flags&extShared != 0})
			}
		}
		if hasMem {
			if m.Length == 0 || m.Base+m.Length < m.Base {
				return bad(i, fmt.Sprintf("memory window %#x+%#x", m.Base, m.Length))
			}
			r.Memory = append(r.Memory, m)
		}
		i += 3 + n
	}
	return bad(len(b), "no End Tag")
}
