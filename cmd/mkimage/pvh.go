package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ELF64 layout constants (System V gABI, "ELF Header" and "Program Header").
const (
	// elf64EhdrSize is sizeof(Elf64_Ehdr).
	elf64EhdrSize = 64
	// elf64PhdrSize is sizeof(Elf64_Phdr), the only e_phentsize we accept.
	elf64PhdrSize = 56
	// offPhoff is the offset of e_phoff (8 bytes) in Elf64_Ehdr.
	offPhoff = 0x20
	// offPhentsize is the offset of e_phentsize (2 bytes) in Elf64_Ehdr.
	offPhentsize = 0x36
	// offPhnum is the offset of e_phnum (2 bytes) in Elf64_Ehdr.
	offPhnum = 0x38
	// maxPhnum is the largest e_phnum stored directly in the header; 0xffff
	// (PN_XNUM) means the count lives in section header 0, which Go never
	// emits and we do not support.
	maxPhnum = 0xfffe
)

// PVH note constants: Xen public/elfnote.h and the x86 PVH boot ABI.
const (
	// xenNoteName is the note owner, NUL-terminated as the note format wants.
	xenNoteName = "Xen\x00"
	// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the physical address
	// a PVH loader jumps to in 32-bit protected mode.
	xenElfnotePhys32Entry = 18
	// pvhDescSize is the descriptor size we write. QEMU 7.2 reads the
	// descriptor of an ELF64 image as a 64-bit value, so a 4-byte descriptor
	// would make it read 4 bytes past the note.
	pvhDescSize = 8
	// pvhNoteSize is the whole note: namesz, descsz, type, name, descriptor.
	pvhNoteSize = 12 + 4 + pvhDescSize
	// pvhNoteAlign is the new PT_NOTE's p_align. QEMU 7.2 finds the
	// descriptor at the name rounded up to p_align; 4 is the note format's
	// own alignment, and the name is exactly 4 bytes.
	pvhNoteAlign = 4
	// phys32Limit is the first address a 32-bit entry with paging off
	// cannot reach.
	phys32Limit = 1 << 32
)

// image is the result of adding a PVH note to an executable.
type image struct {
	// data is the complete output file.
	data []byte
	// entry is the physical entry address written in the note.
	entry uint64
	// entryFrom says where entry came from: "e_entry" or a symbol name.
	entryFrom string
	// loadStart is the lowest physical address of any PT_LOAD segment.
	loadStart uint64
	// loadEnd is one past the highest physical address of any PT_LOAD
	// segment (p_paddr + p_memsz, so .bss included).
	loadEnd uint64
	// droppedPHDR reports whether the input's PT_PHDR was left out of the
	// new program header table.
	droppedPHDR bool
}

// summary is the one line mkimage prints on success.
func (im *image) summary(name string) string {
	return fmt.Sprintf("mkimage: %s: PVH entry %#x (%s), load [%#x, %#x) %d KiB",
		name, im.entry, im.entryFrom, im.loadStart, im.loadEnd, (im.loadEnd-im.loadStart+1023)/1024)
}

// addPVHNote returns in with a PVH entry note added (see the package doc for
// the layout). entrySymbol names the entry symbol; empty means e_entry.
func addPVHNote(in []byte, entrySymbol string) (*image, error) {
	if len(in) < 4 || !bytes.Equal(in[:4], []byte(elf.ELFMAG)) {
		return nil, errors.New("not an ELF file (no \\x7fELF magic)")
	}
	if len(in) >= elf.EI_NIDENT && elf.Class(in[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return nil, fmt.Errorf("is a %v file, want ELFCLASS64 (build with GOARCH=amd64)", elf.Class(in[elf.EI_CLASS]))
	}
	f, err := elf.NewFile(bytes.NewReader(in))
	if err != nil {
		return nil, fmt.Errorf("parsing ELF: %w", err)
	}
	defer f.Close()
	if err := checkHeader(f, in); err != nil {
		return nil, err
	}
	im := &image{}
	if err := checkSegments(f, len(in), im); err != nil {
		return nil, err
	}
	if err := chooseEntry(f, entrySymbol, im); err != nil {
		return nil, err
	}
	im.data, im.droppedPHDR, err = appendNote(in, im.entry)
	if err != nil {
		return nil, err
	}
	return im, nil
}

// checkHeader rejects files that are not static x86-64 executables.
func checkHeader(f *elf.File, in []byte) error {
	if f.Data != elf.ELFDATA2LSB {
		return fmt.Errorf("byte order is %v, want ELFDATA2LSB", f.Data)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("machine is %v, want EM_X86_64 (build with GOARCH=amd64)", f.Machine)
	}
	switch f.Type {
	case elf.ET_EXEC:
	case elf.ET_DYN:
		return errors.New("is position-independent (ET_DYN), want a static ET_EXEC executable (CGO_ENABLED=0, no -buildmode=pie)")
	default:
		return fmt.Errorf("ELF type is %v, want ET_EXEC", f.Type)
	}
	if len(in) < elf64EhdrSize {
		return errors.New("truncated ELF header")
	}
	if n := binary.LittleEndian.Uint16(in[offPhentsize:]); n != elf64PhdrSize {
		return fmt.Errorf("e_phentsize is %d, want %d", n, elf64PhdrSize)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("is dynamically linked (has %v), want a static executable (CGO_ENABLED=0)", p.Type)
		}
	}
	return nil
}

// checkSegments verifies that every PT_LOAD can be loaded by a PVH loader,
// that no PVH note is present yet, and records the load range in im.
func checkSegments(f *elf.File, fileSize int, im *image) error {
	loads := 0
	for i, p := range f.Progs {
		if p.Type == elf.PT_NOTE {
			has, err := hasPVHNote(p)
			if err != nil {
				return fmt.Errorf("program header %d (PT_NOTE): %w", i, err)
			}
			if has {
				return fmt.Errorf("program header %d already holds a PVH entry note (mkimage ran twice?)", i)
			}
			continue
		}
		if p.Type != elf.PT_LOAD {
			continue
		}
		loads++
		if p.Paddr != p.Vaddr {
			return fmt.Errorf("PT_LOAD %d: p_paddr %#x differs from p_vaddr %#x; PVH loads at p_paddr with paging off, so link at an identity-mapped address", i, p.Paddr, p.Vaddr)
		}
		end := p.Paddr + p.Memsz
		if end < p.Paddr || end > phys32Limit {
			return fmt.Errorf("PT_LOAD %d: [%#x, %#x) ends above 4 GiB; PVH starts in 32-bit mode, link lower with -T", i, p.Paddr, end)
		}
		if p.Filesz > p.Memsz {
			return fmt.Errorf("PT_LOAD %d: p_filesz %#x exceeds p_memsz %#x", i, p.Filesz, p.Memsz)
		}
		if p.Off > uint64(fileSize) || p.Filesz > uint64(fileSize)-p.Off {
			return fmt.Errorf("PT_LOAD %d: file range [%#x, %#x) is past the end of the file (%#x bytes)", i, p.Off, p.Off+p.Filesz, fileSize)
		}
		if loads == 1 || p.Paddr < im.loadStart {
			im.loadStart = p.Paddr
		}
		if end > im.loadEnd {
			im.loadEnd = end
		}
	}
	if loads == 0 {
		return errors.New("no PT_LOAD segments")
	}
	return nil
}

// hasPVHNote reports whether the notes in segment p include a Xen
// XEN_ELFNOTE_PHYS32_ENTRY note.
func hasPVHNote(p *elf.Prog) (bool, error) {
	data, err := io.ReadAll(p.Open())
	if err != nil {
		return false, fmt.Errorf("reading notes: %w", err)
	}
	// Notes are 4-byte aligned unless the segment says more, as in QEMU.
	align := p.Align
	if align < 4 || align&(align-1) != 0 {
		align = 4
	}
	for len(data) > 0 {
		if len(data) < 12 {
			return false, fmt.Errorf("truncated note header (%d bytes left)", len(data))
		}
		namesz := uint64(binary.LittleEndian.Uint32(data[0:]))
		descsz := uint64(binary.LittleEndian.Uint32(data[4:]))
		typ := binary.LittleEndian.Uint32(data[8:])
		nameEnd := 12 + namesz
		descStart := alignUp(nameEnd, align)
		next := alignUp(descStart+descsz, align)
		if descStart+descsz > uint64(len(data)) {
			return false, fmt.Errorf("note of %d+%d bytes overruns its segment", namesz, descsz)
		}
		if typ == xenElfnotePhys32Entry && string(data[12:nameEnd]) == xenNoteName {
			return true, nil
		}
		if next >= uint64(len(data)) {
			break
		}
		data = data[next:]
	}
	return false, nil
}

// chooseEntry sets im.entry from e_entry or from the named symbol and checks
// that it lies in an executable PT_LOAD below 4 GiB.
func chooseEntry(f *elf.File, entrySymbol string, im *image) error {
	im.entry, im.entryFrom = f.Entry, "e_entry"
	if entrySymbol != "" {
		sym, err := lookupEntrySymbol(f, entrySymbol)
		if err != nil {
			return err
		}
		im.entry, im.entryFrom = sym.Value, sym.Name
	}
	if im.entry >= phys32Limit {
		return fmt.Errorf("entry %#x (%s) is above 4 GiB; the PVH entry is a 32-bit physical address", im.entry, im.entryFrom)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && im.entry >= p.Vaddr && im.entry < p.Vaddr+p.Filesz {
			return nil
		}
	}
	return fmt.Errorf("entry %#x (%s) is not inside an executable PT_LOAD segment", im.entry, im.entryFrom)
}

// lookupEntrySymbol finds name in f's symbol table. For an assembly
// function that Go code also declares, the linker emits "name.abi0" (the
// assembly) beside "name" (an ABIInternal wrapper that calls it); the
// assembly is the one that can run as a 32-bit entry, so it wins.
func lookupEntrySymbol(f *elf.File, name string) (elf.Symbol, error) {
	syms, err := f.Symbols()
	if err != nil {
		return elf.Symbol{}, fmt.Errorf("looking up entry symbol %q: %w (was the image built with -ldflags=-s?)", name, err)
	}
	var exact *elf.Symbol
	for i := range syms {
		s := &syms[i]
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC && elf.ST_TYPE(s.Info) != elf.STT_NOTYPE {
			continue
		}
		switch s.Name {
		case name + ".abi0":
			return *s, nil
		case name:
			if exact == nil {
				exact = s
			}
		}
	}
	if exact == nil {
		return elf.Symbol{}, fmt.Errorf("entry symbol %q not found in the symbol table", name)
	}
	return *exact, nil
}

// appendNote returns a copy of in with the PVH note and a new program header
// table appended, and the ELF header pointing at that table. It reports
// whether a PT_PHDR entry was left out.
func appendNote(in []byte, entry uint64) ([]byte, bool, error) {
	le := binary.LittleEndian
	phoff := le.Uint64(in[offPhoff:])
	phnum := uint64(le.Uint16(in[offPhnum:]))
	if phoff > uint64(len(in)) || phnum*elf64PhdrSize > uint64(len(in))-phoff {
		return nil, false, fmt.Errorf("program header table [%#x, +%d entries) is past the end of the file", phoff, phnum)
	}
	noteOff := alignUp(uint64(len(in)), 8)
	newPhoff := alignUp(noteOff+pvhNoteSize, 8)

	var table []byte
	dropped := false
	for i := uint64(0); i < phnum; i++ {
		ph := in[phoff+i*elf64PhdrSize : phoff+(i+1)*elf64PhdrSize]
		if elf.ProgType(le.Uint32(ph)) == elf.PT_PHDR {
			dropped = true
			continue
		}
		table = append(table, ph...)
	}
	table = appendPhdr(table, elf.ProgHeader{
		Type:   elf.PT_NOTE,
		Flags:  elf.PF_R,
		Off:    noteOff,
		Filesz: pvhNoteSize,
		Memsz:  pvhNoteSize,
		Align:  pvhNoteAlign,
	})
	newPhnum := uint64(len(table) / elf64PhdrSize)
	if newPhnum > maxPhnum {
		return nil, false, fmt.Errorf("too many program headers (%d)", newPhnum)
	}

	out := make([]byte, newPhoff, newPhoff+uint64(len(table)))
	copy(out, in)
	note := out[noteOff : noteOff+pvhNoteSize]
	le.PutUint32(note[0:], uint32(len(xenNoteName)))
	le.PutUint32(note[4:], pvhDescSize)
	le.PutUint32(note[8:], xenElfnotePhys32Entry)
	copy(note[12:], xenNoteName)
	le.PutUint64(note[12+len(xenNoteName):], entry)
	out = append(out, table...)
	le.PutUint64(out[offPhoff:], newPhoff)
	le.PutUint16(out[offPhnum:], uint16(newPhnum))
	return out, dropped, nil
}

// appendPhdr appends the Elf64_Phdr encoding of p to b.
func appendPhdr(b []byte, p elf.ProgHeader) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(p.Type))
	b = le.AppendUint32(b, uint32(p.Flags))
	b = le.AppendUint64(b, p.Off)
	b = le.AppendUint64(b, p.Vaddr)
	b = le.AppendUint64(b, p.Paddr)
	b = le.AppendUint64(b, p.Filesz)
	b = le.AppendUint64(b, p.Memsz)
	return le.AppendUint64(b, p.Align)
}

// alignUp rounds v up to a multiple of a, a power of two.
func alignUp(v, a uint64) uint64 {
	return (v + a - 1) &^ (a - 1)
}
