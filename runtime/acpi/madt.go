package acpi

// The MADT (signature "APIC", ACPI 6.5 §5.2.12) lists the interrupt
// controllers. Fixed-size arrays keep ParseMADT free of allocation (the
// kernel calls it at boot); machines with more than these are not built by
// any VMM govirtio runs on, and what does not fit is counted.
const (
	MaxIOAPICs   = 8
	MaxOverrides = 16
)

// MADT entry types and lengths (ACPI 6.5 §5.2.12.3, §5.2.12.5).
const (
	madtBody         = 44 // header, local APIC address, flags
	madtIOAPIC       = 1
	madtIOAPICLen    = 12
	madtOverride     = 2
	madtOverrideLen  = 10
	madtEntryHdrSize = 2 // type, length
)

// IOAPIC is one I/O APIC: its registers and the first GSI its inputs
// serve (input n is GSI GSIBase+n).
type IOAPIC struct {
	ID      uint8
	Address uint32 // physical address of its register window
	GSIBase uint32
}

// Override is an interrupt source override: ISA IRQ Source arrives on
// GSI, with the polarity and trigger mode in Flags (MPS INTI flags:
// bits 0-1 polarity, 2-3 trigger; 0 means "as the bus says").
type Override struct {
	Bus    uint8
	Source uint8
	GSI    uint32
	Flags  uint16
}

// ActiveLow and Level decode an override's flags (01 high/edge, 11
// low/level; 00 conforms to the bus, which is ISA: active high, edge).
func (o Override) ActiveLow() bool { return o.Flags&3 == 3 }
func (o Override) Level() bool     { return o.Flags>>2&3 == 3 }

// MADT is what the kernel needs of the table.
type MADT struct {
	LocalAPIC    uint32 // physical address of the local APICs
	Flags        uint32 // bit 0: the machine also has 8259 PICs
	IOAPICs      [MaxIOAPICs]IOAPIC
	NumIOAPICs   int
	Overrides    [MaxOverrides]Override
	NumOverrides int
	// Dropped counts I/O APICs and overrides beyond the arrays.
	Dropped int
}

// ParseMADT checks the MADT at the start of b and reads its I/O APICs and
// interrupt source overrides. Other entries (local APICs, NMI sources,
// x2APIC entries...) are skipped by their length, which must be at least
// 2 and stay within the table.
func ParseMADT(b []byte) (MADT, error) {
	h, err := CheckTable(b)
	if err != nil {
		return MADT{}, err
	}
	if string(h.Signature[:]) != "APIC" {
		return MADT{}, ErrSignature
	}
	if h.Length < madtBody {
		return MADT{}, ErrLength
	}
	m := MADT{LocalAPIC: le.Uint32(b[36:]), Flags: le.Uint32(b[40:])}
	t := b[:h.Length]
	for off := madtBody; off < len(t); {
		if len(t)-off < madtEntryHdrSize {
			return MADT{}, ErrMADTEntry
		}
		typ, n := t[off], int(t[off+1])
		if n < madtEntryHdrSize || n > len(t)-off {
			return MADT{}, ErrMADTEntry
		}
		e := t[off : off+n]
		switch typ {
		case madtIOAPIC:
			if n < madtIOAPICLen {
				return MADT{}, ErrMADTEntry
			}
			if m.NumIOAPICs == MaxIOAPICs {
				m.Dropped++
				break
			}
			m.IOAPICs[m.NumIOAPICs] = IOAPIC{ID: e[2], Address: le.Uint32(e[4:]), GSIBase: le.Uint32(e[8:])}
			m.NumIOAPICs++
		case madtOverride:
			if n < madtOverrideLen {
				return MADT{}, ErrMADTEntry
			}
			if m.NumOverrides == MaxOverrides {
				m.Dropped++
				break
			}
			m.Overrides[m.NumOverrides] = Override{Bus: e[2], Source: e[3], GSI: le.Uint32(e[4:]), Flags: le.Uint16(e[8:])}
			m.NumOverrides++
		}
		off += n
	}
	return m, nil
}
