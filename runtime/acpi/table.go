package acpi

import "encoding/binary"

// Error is a way the tables can be wrong. Its values are constants, so the
// kernel can return and compare them before any package is initialised.
type Error string

func (e Error) Error() string { return string(e) }

// What the table functions report.
const (
	ErrShort     = Error("acpi: table shorter than its header says")
	ErrLength    = Error("acpi: table length out of range")
	ErrChecksum  = Error("acpi: bad checksum")
	ErrSignature = Error("acpi: unexpected table signature")
	ErrRevision  = Error("acpi: unsupported revision")
	ErrMADTEntry = Error("acpi: MADT entry too short or past the table")
	ErrNoDSDT    = Error("acpi: FADT names no DSDT")
)

var le = binary.LittleEndian

// Sizes of the fixed structures (ACPI 6.5 §5.2.5.3, §5.2.6).
const (
	// RSDPSize is the length of a revision 2 RSDP; revision 0 uses the
	// first rsdpV1Size bytes.
	RSDPSize   = 36
	rsdpV1Size = 20
	// HeaderSize is the length of the header every other table starts
	// with.
	HeaderSize = 36
)

// RSDP is the Root System Description Pointer: where the XSDT (revision
// 2 and later) or the RSDT (revision 0) is.
type RSDP struct {
	Revision uint8   // 0 for ACPI 1.0 (RSDT only), 2 for later
	OEMID    [6]byte // who built the tables ("BOCHS " for QEMU)
	RSDT     uint32  // physical address of the RSDT, 0 if none
	XSDT     uint64  // physical address of the XSDT (revision >= 2), else 0
}

// Root is the table the RSDP points at: the XSDT when the RSDP has one,
// else the RSDT.
func (r RSDP) Root() uint64 {
	if r.XSDT != 0 {
		return r.XSDT
	}
	return uint64(r.RSDT)
}

// ParseRSDP checks and reads the RSDP at the start of b: signature "RSD
// PTR ", the checksum of its first 20 bytes and, from revision 2, its
// length and the extended checksum over that length.
func ParseRSDP(b []byte) (RSDP, error) {
	if len(b) < rsdpV1Size {
		return RSDP{}, ErrShort
	}
	if string(b[:8]) != "RSD PTR " {
		return RSDP{}, ErrSignature
	}
	if sum(b[:rsdpV1Size]) != 0 {
		return RSDP{}, ErrChecksum
	}
	r := RSDP{Revision: b[15], RSDT: le.Uint32(b[16:])}
	copy(r.OEMID[:], b[9:15])
	if r.Revision < 2 {
		return r, nil
	}
	if len(b) < RSDPSize {
		return RSDP{}, ErrShort
	}
	n := le.Uint32(b[20:])
	if n < RSDPSize || uint64(n) > uint64(len(b)) {
		return RSDP{}, ErrLength
	}
	if sum(b[:n]) != 0 {
		return RSDP{}, ErrChecksum
	}
	r.XSDT = le.Uint64(b[24:])
	return r, nil
}

// Header is the common header of the system description tables.
type Header struct {
	Signature  [4]byte // "APIC", "FACP", "DSDT", ...
	Length     uint32  // of the whole table, header included
	Revision   uint8
	OEMID      [6]byte
	OEMTableID [8]byte
}

// PeekHeader reads the header at the start of b without checking the
// checksum (for which the whole table is needed): the length must cover
// at least the header.
func PeekHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	var h Header
	copy(h.Signature[:], b[:4])
	h.Length = le.Uint32(b[4:])
	h.Revision = b[8]
	copy(h.OEMID[:], b[10:16])
	copy(h.OEMTableID[:], b[16:24])
	if h.Length < HeaderSize {
		return Header{}, ErrLength
	}
	return h, nil
}

// CheckTable checks the table at the start of b (its length within b and
// its checksum) and returns its header. Bytes of b past the table's
// length are ignored.
func CheckTable(b []byte) (Header, error) {
	h, err := PeekHeader(b)
	if err != nil {
		return Header{}, err
	}
	if uint64(h.Length) > uint64(len(b)) {
		return Header{}, ErrShort
	}
	if sum(b[:h.Length]) != 0 {
		return Header{}, ErrChecksum
	}
	return h, nil
}

// sum adds bytes modulo 256: a table is valid when its bytes sum to 0.
func sum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

// SDT is a checked XSDT (64-bit entries) or RSDT (32-bit entries): the
// physical addresses of the other tables.
type SDT struct {
	body  []byte // the entries
	width int    // 8 for the XSDT, 4 for the RSDT
}

// ParseSDT checks the XSDT or RSDT at the start of b.
func ParseSDT(b []byte) (SDT, error) {
	h, err := CheckTable(b)
	if err != nil {
		return SDT{}, err
	}
	s := SDT{body: b[HeaderSize:h.Length]}
	switch string(h.Signature[:]) {
	case "XSDT":
		s.width = 8
	case "RSDT":
		s.width = 4
	default:
		return SDT{}, ErrSignature
	}
	if len(s.body)%s.width != 0 {
		return SDT{}, ErrLength
	}
	return s, nil
}

// Len is the number of tables listed.
func (s SDT) Len() int {
	if s.width == 0 {
		return 0
	}
	return len(s.body) / s.width
}

// Entry is the physical address of table i (0 <= i < Len).
func (s SDT) Entry(i int) uint64 {
	if s.width == 4 {
		return uint64(le.Uint32(s.body[4*i:]))
	}
	return le.Uint64(s.body[8*i:])
}

// Offsets in the FADT (ACPI 6.5 §5.2.9, Table 5.9).
const (
	fadtDSDT  = 40  // 32-bit DSDT address
	fadtXDSDT = 140 // 64-bit X_DSDT address, ACPI 2.0 and later
)

// DSDTAddress returns the physical address of the DSDT that the FADT at
// the start of b names: X_DSDT when the table is long enough to have it
// and it is set, else the 32-bit DSDT field.
func DSDTAddress(b []byte) (uint64, error) {
	h, err := CheckTable(b)
	if err != nil {
		return 0, err
	}
	if string(h.Signature[:]) != "FACP" {
		return 0, ErrSignature
	}
	if h.Length >= fadtXDSDT+8 {
		if a := le.Uint64(b[fadtXDSDT:]); a != 0 {
			return a, nil
		}
	}
	if h.Length >= fadtDSDT+4 {
		if a := le.Uint32(b[fadtDSDT:]); a != 0 {
			return uint64(a), nil
		}
	}
	return 0, ErrNoDSDT
}
