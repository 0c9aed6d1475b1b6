package acpi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrAML: AML whose encoded lengths or names run past the object that
// holds them (a corrupt or hostile table).
const ErrAML = Error("acpi: malformed AML")

// Device is a Device () object of the namespace and what it declares
// as constants.
type Device struct {
	// Path is the device's absolute name, e.g. \_SB_.VR23.
	Path string
	// HID is its _HID: the string, or a compressed EISA ID decoded
	// ("PNP0501"); "" when it has none that is a constant.
	HID string
	// UID is its _UID: the string, or the integer in decimal; "" if none.
	UID string
	// Status is its _STA when that is a constant (bit 0: present);
	// HasStatus says whether it was.
	Status    uint64
	HasStatus bool
	// Resources is what its _CRS resource template names.
	Resources Resources
	// CRSMethod is set when _CRS is a Method, which only an AML
	// interpreter could run: Resources is then empty.
	CRSMethod bool
	// CRSErr is why a _CRS buffer could not be read, else nil.
	CRSErr error
}

// Present reports whether the device is there: _STA absent (which
// means present) or with bit 0 set.
func (d Device) Present() bool { return !d.HasStatus || d.Status&1 != 0 }

// Scan is what Devices found in a DSDT or SSDT.
type Scan struct {
	// Devices lists every Device object, in table order (a device before
	// the ones declared inside it).
	Devices []Device
	// Unknown counts object lists whose walk stopped at an opcode the
	// scanner does not decode (see the package documentation).
	Unknown int
}

// ByHID returns the present devices whose _HID is hid.
func (s Scan) ByHID(hid string) []Device {
	var out []Device
	for _, d := range s.Devices {
		if d.HID == hid && d.Present() {
			out = append(out, d)
		}
	}
	return out
}

// Devices checks the definition block (DSDT or SSDT) at the start of b and
// lists its devices.
func Devices(b []byte) (Scan, error) {
	h, err := CheckTable(b)
	if err != nil {
		return Scan{}, fmt.Errorf("acpi: %s: %w", h.Signature[:], err)
	}
	if s := string(h.Signature[:]); s != "DSDT" && s != "SSDT" {
		return Scan{}, fmt.Errorf("acpi: %q is not a definition block: %w", s, ErrSignature)
	}
	p := parser{b: b[:h.Length]}
	if err := p.termList(HeaderSize, int(h.Length), `\`, nil); err != nil {
		return Scan{}, err
	}
	return Scan{Devices: p.devs, Unknown: p.unknown}, nil
}

// AML opcodes (ACPI 6.5 §20.3).
const (
	opZero        = 0x00
	opOne         = 0x01
	opAlias       = 0x06
	opName        = 0x08
	opBytePrefix  = 0x0a
	opWordPrefix  = 0x0b
	opDWordPrefix = 0x0c
	opString      = 0x0d
	opQWordPrefix = 0x0e
	opScope       = 0x10
	opBuffer      = 0x11
	opPackage     = 0x12
	opVarPackage  = 0x13
	opMethod      = 0x14
	opExternal    = 0x15
	opDualName    = 0x2e
	opMultiName   = 0x2f
	opExt         = 0x5b
	opRoot        = 0x5c
	opParent      = 0x5e
	opIf          = 0xa0
	opElse        = 0xa1
	opWhile       = 0xa2
	opOnes        = 0xff

	// After opExt.
	extMutex       = 0x01
	extEvent       = 0x02
	extRevision    = 0x30
	extOpRegion    = 0x80
	extField       = 0x81
	extDevice      = 0x82
	extProcessor   = 0x83
	extPowerRes    = 0x84
	extThermalZone = 0x85
	extIndexField  = 0x86
	extBankField   = 0x87
)

// parser walks one definition block. Offsets are from the table's start.
type parser struct {
	b       []byte   // the whole table
	devs    []Device // found so far
	unknown int      // object lists given up
}

func (p *parser) errorf(off int, format string, args ...any) error {
	return fmt.Errorf("%w at offset %#x: %s", ErrAML, off, fmt.Sprintf(format, args...))
}

// termList walks the objects in [i, end) declared in scope; dev is the
// Device whose body this is, or nil.
func (p *parser) termList(i, end int, scope string, dev *Device) error {
	for i < end {
		next, err := p.term(i, end, scope, dev)
		if err != nil {
			return err
		}
		if next < 0 {
			p.unknown++
			return nil
		}
		i = next
	}
	return nil
}

// term decodes the object at i and returns where the next one starts, or
// -1 for an opcode it does not know.
func (p *parser) term(i, end int, scope string, dev *Device) (int, error) {
	b := p.b
	switch op := b[i]; op {
	case opScope:
		body, objEnd, err := p.pkgLength(i+1, end)
		if err != nil {
			return 0, err
		}
		name, body, err := p.nameString(body, objEnd)
		if err != nil {
			return 0, err
		}
		return objEnd, p.termList(body, objEnd, join(scope, name), nil)
	case opName:
		name, next, err := p.nameString(i+1, end)
		if err != nil {
			return 0, err
		}
		if next >= end {
			return 0, p.errorf(i, "Name %s without a value", name)
		}
		v, next, err := p.dataObject(next, end)
		if err != nil || next < 0 {
			return next, err
		}
		if dev != nil {
			dev.set(name, v)
		}
		return next, nil
	case opMethod:
		body, objEnd, err := p.pkgLength(i+1, end)
		if err != nil {
			return 0, err
		}
		name, _, err := p.nameString(body, objEnd)
		if err != nil {
			return 0, err
		}
		if dev != nil && name == "_CRS" {
			dev.CRSMethod = true
		}
		return objEnd, nil
	case opIf, opElse, opWhile, opBuffer, opPackage, opVarPackage:
		_, objEnd, err := p.pkgLength(i+1, end)
		return objEnd, err
	case opAlias:
		_, next, err := p.nameString(i+1, end)
		if err != nil {
			return 0, err
		}
		_, next, err = p.nameString(next, end)
		return next, err
	case opExternal:
		_, next, err := p.nameString(i+1, end)
		if err != nil {
			return 0, err
		}
		if end-next < 2 {
			return 0, p.errorf(i, "External past its scope")
		}
		return next + 2, nil
	case opExt:
		if i+1 >= end {
			return 0, p.errorf(i, "extended opcode past its scope")
		}
		return p.extTerm(i, end, scope)
	}
	return -1, nil
}

// extTerm decodes the object at i whose opcode starts with opExt.
func (p *parser) extTerm(i, end int, scope string) (int, error) {
	switch p.b[i+1] {
	case extDevice:
		body, objEnd, err := p.pkgLength(i+2, end)
		if err != nil {
			return 0, err
		}
		name, body, err := p.nameString(body, objEnd)
		if err != nil {
			return 0, err
		}
		d := Device{Path: join(scope, name)}
		at := len(p.devs)
		if err := p.termList(body, objEnd, d.Path, &d); err != nil {
			return 0, err
		}
		p.devs = slices.Insert(p.devs, at, d)
		return objEnd, nil
	case extField, extIndexField, extBankField, extProcessor, extPowerRes, extThermalZone:
		_, objEnd, err := p.pkgLength(i+2, end)
		return objEnd, err
	case extMutex:
		_, next, err := p.nameString(i+2, end)
		if err != nil {
			return 0, err
		}
		if next >= end {
			return 0, p.errorf(i, "Mutex past its scope")
		}
		return next + 1, nil
	case extEvent:
		_, next, err := p.nameString(i+2, end)
		return next, err
	case extOpRegion:
		// OperationRegion (Name, Space, Offset, Length): the offset and
		// length are TermArgs, read here only when they are constants.
		_, next, err := p.nameString(i+2, end)
		if err != nil {
			return 0, err
		}
		if next >= end {
			return 0, p.errorf(i, "OperationRegion past its scope")
		}
		next++
		for k := 0; k < 2 && next >= 0; k++ {
			var v value
			if next >= end {
				return 0, p.errorf(i, "OperationRegion past its scope")
			}
			if v, next, err = p.dataObject(next, end); err != nil {
				return 0, err
			}
			if next >= 0 && v.kind != kindInt {
				next = -1
			}
		}
		return next, nil
	}
	return -1, nil
}

// pkgLength decodes the PkgLength at i (ACPI 6.5 §20.2.4), which counts
// itself and what follows it: it returns where the rest of the object
// starts and where the object ends, which must be within end.
func (p *parser) pkgLength(i, end int) (body, objEnd int, err error) {
	if i >= end {
		return 0, 0, p.errorf(i, "PkgLength past its scope")
	}
	lead := p.b[i]
	extra := int(lead >> 6)
	if end-i < 1+extra {
		return 0, 0, p.errorf(i, "PkgLength past its scope")
	}
	n := int(lead & 0x3f)
	if extra > 0 {
		if lead&0x30 != 0 {
			return 0, 0, p.errorf(i, "PkgLength lead byte %#x has bits 4-5 set", lead)
		}
		n = int(lead & 0x0f)
		for k := 0; k < extra; k++ {
			n |= int(p.b[i+1+k]) << (4 + 8*k)
		}
	}
	if n < 1+extra || n > end-i {
		return 0, 0, p.errorf(i, "PkgLength %d outside its scope (%d bytes left)", n, end-i)
	}
	return i + 1 + extra, i + n, nil
}

// nameString decodes the NameString at i (ACPI 6.5 §20.2.2): an optional
// root or parent prefixes, then a null name, one name segment, or a dual
// or multi name path. It returns the name as text (\ and ^ kept, segments
// joined by dots) and where it ends.
func (p *parser) nameString(i, end int) (string, int, error) {
	b := p.b
	var sb strings.Builder
	start := i
	if i < end && b[i] == opRoot {
		sb.WriteByte('\\')
		i++
	} else {
		for i < end && b[i] == opParent {
			sb.WriteByte('^')
			i++
		}
	}
	if i >= end {
		return "", 0, p.errorf(start, "name past its scope")
	}
	segs := 1
	switch b[i] {
	case 0:
		return sb.String(), i + 1, nil
	case opDualName:
		segs = 2
		i++
	case opMultiName:
		if i+1 >= end {
			return "", 0, p.errorf(start, "name past its scope")
		}
		segs = int(b[i+1])
		i += 2
	}
	if segs*4 > end-i {
		return "", 0, p.errorf(start, "name of %d segments past its scope", segs)
	}
	for k := 0; k < segs; k++ {
		seg := b[i : i+4]
		for j, c := range seg {
			ok := c == '_' || c >= 'A' && c <= 'Z' || j > 0 && c >= '0' && c <= '9'
			if !ok {
				return "", 0, p.errorf(i, "bad name segment %q", seg)
			}
		}
		if k > 0 {
			sb.WriteByte('.')
		}
		sb.Write(seg)
		i += 4
	}
	return sb.String(), i, nil
}

// join resolves a declared name against the scope it is declared in.
func join(scope, name string) string {
	if strings.HasPrefix(name, `\`) {
		return name
	}
	for strings.HasPrefix(name, "^") {
		name = name[1:]
		if k := strings.LastIndexByte(scope, '.'); k >= 0 {
			scope = scope[:k]
		} else {
			scope = `\`
		}
	}
	switch {
	case name == "":
		return scope
	case scope == `\`:
		return scope + name
	}
	return scope + "." + name
}

// value is a constant data object.
type value struct {
	kind uint8
	n    uint64 // kindInt
	s    string // kindString
	buf  []byte // kindBuffer: the initialiser, at most the buffer's size
	bad  error  // kindBuffer: why its size could not be read
}

const (
	kindInt = iota + 1
	kindString
	kindBuffer
	kindOther // a package, or an integer whose value is not constant
)

// dataObject decodes the constant at i (ACPI 6.5 §20.2.3 DataObject), or
// returns -1 for something else.
func (p *parser) dataObject(i, end int) (value, int, error) {
	b := p.b
	if i >= end {
		return value{}, 0, p.errorf(i, "value past its scope")
	}
	fixed := func(size int) (value, int, error) {
		if end-i-1 < size {
			return value{}, 0, p.errorf(i, "integer past its scope")
		}
		var n uint64
		for k := 0; k < size; k++ {
			n |= uint64(b[i+1+k]) << (8 * k)
		}
		return value{kind: kindInt, n: n}, i + 1 + size, nil
	}
	switch b[i] {
	case opZero:
		return value{kind: kindInt}, i + 1, nil
	case opOne:
		return value{kind: kindInt, n: 1}, i + 1, nil
	case opOnes:
		return value{kind: kindInt, n: ^uint64(0)}, i + 1, nil
	case opBytePrefix:
		return fixed(1)
	case opWordPrefix:
		return fixed(2)
	case opDWordPrefix:
		return fixed(4)
	case opQWordPrefix:
		return fixed(8)
	case opString:
		for k := i + 1; k < end; k++ {
			if b[k] == 0 {
				return value{kind: kindString, s: string(b[i+1 : k])}, k + 1, nil
			}
		}
		return value{}, 0, p.errorf(i, "string without its NUL")
	case opBuffer:
		body, objEnd, err := p.pkgLength(i+1, end)
		if err != nil {
			return value{}, 0, err
		}
		v := value{kind: kindBuffer}
		size, next, err := p.dataObject(body, objEnd)
		switch {
		case err != nil:
			return value{}, 0, err
		case next < 0 || size.kind != kindInt:
			v.bad = fmt.Errorf("%w: buffer size at offset %#x is not a constant", ErrResource, body)
		default:
			v.buf = b[next:objEnd]
			if size.n < uint64(len(v.buf)) {
				v.bad = fmt.Errorf("%w: buffer of %d bytes initialised with %d", ErrResource, size.n, len(v.buf))
			}
		}
		return v, objEnd, nil
	case opPackage, opVarPackage:
		_, objEnd, err := p.pkgLength(i+1, end)
		return value{kind: kindOther}, objEnd, err
	case opExt:
		if i+1 < end && b[i+1] == extRevision {
			return value{kind: kindOther}, i + 2, nil
		}
	}
	return value{}, -1, nil
}

// set records a constant a device declares.
func (d *Device) set(name string, v value) {
	switch name {
	case "_HID":
		switch v.kind {
		case kindString:
			d.HID = v.s
		case kindInt:
			d.HID = eisaID(uint32(v.n))
		}
	case "_UID":
		switch v.kind {
		case kindString:
			d.UID = v.s
		case kindInt:
			d.UID = strconv.FormatUint(v.n, 10)
		}
	case "_STA":
		if v.kind == kindInt {
			d.Status, d.HasStatus = v.n, true
		}
	case "_CRS":
		switch {
		case v.kind != kindBuffer:
			d.CRSErr = fmt.Errorf("%w: _CRS is not a buffer", ErrResource)
		case v.bad != nil:
			d.CRSErr = v.bad
		default:
			d.Resources, d.CRSErr = ParseResources(v.buf)
		}
	}
}

// eisaID decodes a compressed EISA ID (ACPI 6.5 §6.1.5): three letters of
// five bits each and four hexadecimal digits, stored big-endian in the
// integer's little-endian bytes.
func eisaID(v uint32) string {
	x := v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
	return fmt.Sprintf("%c%c%c%04X", '@'+byte(x>>26&0x1f), '@'+byte(x>>21&0x1f), '@'+byte(x>>16&0x1f), x&0xffff)
}
