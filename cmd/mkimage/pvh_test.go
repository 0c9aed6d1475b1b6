package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// bootProgram builds testdata/boot (a static Go program whose assembly entry
// is 32-bit PVH code) once per test binary; tests share the result read-only.
var bootProgram struct {
	once sync.Once
	// dir holds the build output; removed by TestMain.
	dir string
	// path is the built executable.
	path string
	// err is the build failure, if any.
	err error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bootProgram.dir != "" {
		os.RemoveAll(bootProgram.dir)
	}
	os.Exit(code)
}

// buildBoot returns the path of the built testdata/boot executable, linked
// the way images are: -E main.entry -T 0x200000.
func buildBoot(t *testing.T) string {
	t.Helper()
	bootProgram.once.Do(func() {
		dir, err := os.MkdirTemp("", "mkimage-test-")
		if err != nil {
			bootProgram.err = err
			return
		}
		bootProgram.dir = dir
		bootProgram.path = filepath.Join(dir, "boot")
		src, err := filepath.Abs(filepath.Join("testdata", "boot"))
		if err != nil {
			bootProgram.err = err
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-E main.entry -T 0x200000", "-o", bootProgram.path, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			bootProgram.err = fmt.Errorf("go build testdata/boot: %v\n%s", err, out)
		}
	})
	if bootProgram.err != nil {
		t.Fatal(bootProgram.err)
	}
	return bootProgram.path
}

// symbolValue returns the address of the named symbol in the ELF file at
// path, failing the test if it is absent.
func symbolValue(t *testing.T, f *elf.File, name string) uint64 {
	t.Helper()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("reading symbols: %v", err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("symbol %q not found", name)
	return 0
}

// decodePVHNote checks that data is exactly one Xen PHYS32_ENTRY note laid
// out as QEMU 7.2 reads it (4-byte name, 8-byte descriptor) and returns the
// entry. It is written independently of the code under test.
func decodePVHNote(data []byte) (uint64, error) {
	if len(data) != 24 {
		return 0, fmt.Errorf("note segment is %d bytes, want 24", len(data))
	}
	le := binary.LittleEndian
	if namesz, descsz, typ := le.Uint32(data[0:]), le.Uint32(data[4:]), le.Uint32(data[8:]); namesz != 4 || descsz != 8 || typ != 18 {
		return 0, fmt.Errorf("note header namesz=%d descsz=%d type=%d, want 4, 8, 18", namesz, descsz, typ)
	}
	if name := string(data[12:16]); name != "Xen\x00" {
		return 0, fmt.Errorf("note name %q, want \"Xen\\x00\"", name)
	}
	entry := le.Uint64(data[16:])
	if entry>>32 != 0 {
		return 0, fmt.Errorf("descriptor %#x has a non-zero upper half", entry)
	}
	return entry, nil
}

// checkImage verifies out against in: one new PT_NOTE with p_align 4
// holding the PVH note for wantEntry, PT_PHDR gone, every other program
// header unchanged and in order, and in's bytes unchanged except e_phoff and
// e_phnum.
func checkImage(t *testing.T, in, out []byte, wantEntry uint64) {
	t.Helper()
	fin, err := elf.NewFile(bytes.NewReader(in))
	if err != nil {
		t.Fatalf("parsing input: %v", err)
	}
	fout, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("parsing output: %v", err)
	}
	var kept []elf.ProgHeader
	for _, p := range fin.Progs {
		if p.Type != elf.PT_PHDR {
			kept = append(kept, p.ProgHeader)
		}
	}
	if len(fout.Progs) != len(kept)+1 {
		t.Fatalf("output has %d program headers, want %d (input's without PT_PHDR, plus one)", len(fout.Progs), len(kept)+1)
	}
	for i, want := range kept {
		if got := fout.Progs[i].ProgHeader; got != want {
			t.Errorf("program header %d changed: got %+v, want %+v", i, got, want)
		}
	}
	note := fout.Progs[len(kept)]
	if note.Type != elf.PT_NOTE || note.Align != 4 {
		t.Fatalf("new program header is %v with p_align %d, want PT_NOTE with p_align 4", note.Type, note.Align)
	}
	data, err := io.ReadAll(note.Open())
	if err != nil {
		t.Fatalf("reading note: %v", err)
	}
	entry, err := decodePVHNote(data)
	if err != nil {
		t.Fatal(err)
	}
	if entry != wantEntry {
		t.Errorf("PVH entry %#x, want %#x", entry, wantEntry)
	}
	if fout.Entry != fin.Entry {
		t.Errorf("e_entry changed from %#x to %#x", fin.Entry, fout.Entry)
	}
	// Every byte of the input, loaded or not, is unchanged but for the two
	// header fields that locate the program header table.
	if len(out) < len(in) {
		t.Fatalf("output is shorter (%d bytes) than input (%d)", len(out), len(in))
	}
	changed := map[int]bool{}
	for i := offPhoff; i < offPhoff+8; i++ {
		changed[i] = true
	}
	for i := offPhnum; i < offPhnum+2; i++ {
		changed[i] = true
	}
	for i := range in {
		if in[i] != out[i] && !changed[i] {
			t.Fatalf("byte %#x changed from %#x to %#x", i, in[i], out[i])
		}
	}
	for _, p := range fin.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		a, b := in[p.Off:p.Off+p.Filesz], out[p.Off:p.Off+p.Filesz]
		if p.Off == 0 {
			a, b = a[elf64EhdrSize:], b[elf64EhdrSize:]
		}
		if !bytes.Equal(a, b) {
			t.Errorf("PT_LOAD at %#x: loaded bytes differ beyond the ELF header", p.Vaddr)
		}
	}
	if len(fout.Sections) != len(fin.Sections) {
		t.Errorf("output has %d sections, input %d", len(fout.Sections), len(fin.Sections))
	}
}

func TestAddPVHNoteToGoProgram(t *testing.T) {
	path := buildBoot(t)
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		entrySymbol string
		// wantSymbol is the symbol whose address the note must hold;
		// empty means e_entry.
		wantSymbol string
	}{
		{name: "default entry is e_entry", entrySymbol: "", wantSymbol: ""},
		{name: "assembly entry resolves to its abi0 body, not the Go wrapper", entrySymbol: "main.entry", wantSymbol: "main.entry.abi0"},
		{name: "abi0 symbol named directly", entrySymbol: "main.entry.abi0", wantSymbol: "main.entry.abi0"},
		{name: "symbol without an abi0 twin", entrySymbol: "runtime.throw", wantSymbol: "runtime.throw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, wantFrom := f.Entry, "e_entry"
			if tt.wantSymbol != "" {
				want, wantFrom = symbolValue(t, f, tt.wantSymbol), tt.wantSymbol
			}
			im, err := addPVHNote(in, tt.entrySymbol)
			if err != nil {
				t.Fatalf("addPVHNote: %v", err)
			}
			if im.entry != want || im.entryFrom != wantFrom {
				t.Errorf("entry %#x from %s, want %#x from %s", im.entry, im.entryFrom, want, wantFrom)
			}
			if !im.droppedPHDR {
				t.Errorf("Go binaries have a PT_PHDR; want it dropped")
			}
			checkImage(t, in, im.data, want)
		})
	}
	// The -E entry and the abi0 symbol agree, so linking with -E is enough.
	if got := symbolValue(t, f, "main.entry.abi0"); got != f.Entry {
		t.Errorf("e_entry %#x is not main.entry.abi0 (%#x)", f.Entry, got)
	}
}

// synthSeg is one segment of a synthetic ELF built by synthELF.
type synthSeg struct {
	// typ is p_type.
	typ elf.ProgType
	// flags is p_flags.
	flags elf.ProgFlag
	// vaddr is p_vaddr.
	vaddr uint64
	// paddr is p_paddr.
	paddr uint64
	// memsz is p_memsz; at least len(data).
	memsz uint64
	// data is the file contents of the segment.
	data []byte
}

// synthELF describes a small ELF file for tests that need shapes the Go
// linker does not produce.
type synthELF struct {
	// class is ELFCLASS32 or ELFCLASS64.
	class elf.Class
	// typ is e_type.
	typ elf.Type
	// machine is e_machine.
	machine elf.Machine
	// entry is e_entry.
	entry uint64
	// segs are the program headers, in order.
	segs []synthSeg
}

// bytes lays out the ELF header, the program headers and the segment data;
// there are no sections and no symbols.
func (s synthELF) bytes() []byte {
	var b bytes.Buffer
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(s.class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	if s.class == elf.ELFCLASS32 {
		binary.Write(&b, binary.LittleEndian, elf.Header32{
			Ident: ident, Type: uint16(s.typ), Machine: uint16(s.machine), Version: uint32(elf.EV_CURRENT),
			Entry: uint32(s.entry), Ehsize: 52, Phentsize: 32,
		})
		return b.Bytes()
	}
	phoff := uint64(elf64EhdrSize)
	dataOff := phoff + uint64(len(s.segs))*elf64PhdrSize
	binary.Write(&b, binary.LittleEndian, elf.Header64{
		Ident: ident, Type: uint16(s.typ), Machine: uint16(s.machine), Version: uint32(elf.EV_CURRENT),
		Entry: s.entry, Phoff: phoff, Ehsize: elf64EhdrSize, Phentsize: elf64PhdrSize, Phnum: uint16(len(s.segs)),
	})
	off := dataOff
	for _, sg := range s.segs {
		binary.Write(&b, binary.LittleEndian, elf.Prog64{
			Type: uint32(sg.typ), Flags: uint32(sg.flags), Off: off, Vaddr: sg.vaddr, Paddr: sg.paddr,
			Filesz: uint64(len(sg.data)), Memsz: max(sg.memsz, uint64(len(sg.data))), Align: 4,
		})
		off += uint64(len(sg.data))
	}
	for _, sg := range s.segs {
		b.Write(sg.data)
	}
	return b.Bytes()
}

// textSeg is an executable PT_LOAD of 16 bytes at addr, identity-mapped.
func textSeg(addr uint64) synthSeg {
	return synthSeg{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_X, vaddr: addr, paddr: addr, memsz: 16, data: make([]byte, 16)}
}

// kernel is a valid synthetic static executable; tests vary it.
func kernel(mutate func(*synthELF)) []byte {
	s := synthELF{class: elf.ELFCLASS64, typ: elf.ET_EXEC, machine: elf.EM_X86_64, entry: 0x100000,
		segs: []synthSeg{textSeg(0x100000)}}
	if mutate != nil {
		mutate(&s)
	}
	return s.bytes()
}

func TestAddPVHNoteWithoutPTPHDRAppendsAHeader(t *testing.T) {
	in := kernel(func(s *synthELF) {
		s.segs = append(s.segs, synthSeg{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_W, vaddr: 0x200000, paddr: 0x200000, memsz: 0x5000, data: []byte{1, 2, 3}})
	})
	im, err := addPVHNote(in, "")
	if err != nil {
		t.Fatal(err)
	}
	if im.droppedPHDR {
		t.Error("droppedPHDR set for an input without PT_PHDR")
	}
	if im.loadStart != 0x100000 || im.loadEnd != 0x205000 {
		t.Errorf("load range [%#x, %#x), want [0x100000, 0x205000)", im.loadStart, im.loadEnd)
	}
	checkImage(t, in, im.data, 0x100000)
	if got, want := im.summary("img"), "mkimage: img: PVH entry 0x100000 (e_entry), load [0x100000, 0x205000) 1044 KiB"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestAddPVHNoteRejects(t *testing.T) {
	goProgram := func(t *testing.T) []byte {
		b, err := os.ReadFile(buildBoot(t))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fixed := func(b []byte) func(*testing.T) []byte { return func(*testing.T) []byte { return b } }
	tests := []struct {
		name        string
		input       func(*testing.T) []byte
		entrySymbol string
		wantErr     string
	}{
		{name: "empty file", input: fixed(nil), wantErr: "not an ELF file"},
		{name: "shell script", input: fixed([]byte("#!/bin/sh\nexit 0\n")), wantErr: "not an ELF file"},
		{name: "32-bit ELF", input: fixed(kernel(func(s *synthELF) { s.class = elf.ELFCLASS32; s.machine = elf.EM_386 })), wantErr: "ELFCLASS32"},
		{name: "truncated ELF64", input: fixed(kernel(nil)[:40]), wantErr: "parsing ELF"},
		{name: "other machine", input: fixed(kernel(func(s *synthELF) { s.machine = elf.EM_AARCH64 })), wantErr: "want EM_X86_64"},
		{name: "position-independent executable", input: fixed(kernel(func(s *synthELF) { s.typ = elf.ET_DYN })), wantErr: "position-independent"},
		{name: "dynamic executable with an interpreter", input: fixed(kernel(func(s *synthELF) {
			s.segs = append([]synthSeg{{typ: elf.PT_INTERP, flags: elf.PF_R, data: []byte("/lib64/ld-linux-x86-64.so.2\x00")}}, s.segs...)
		})), wantErr: "dynamically linked"},
		{name: "dynamic section", input: fixed(kernel(func(s *synthELF) {
			s.segs = append(s.segs, synthSeg{typ: elf.PT_DYNAMIC, flags: elf.PF_R | elf.PF_W, data: make([]byte, 16)})
		})), wantErr: "dynamically linked"},
		{name: "no loadable segment", input: fixed(kernel(func(s *synthELF) { s.segs = nil })), wantErr: "no PT_LOAD"},
		{name: "physical address differs from virtual", input: fixed(kernel(func(s *synthELF) { s.segs[0].paddr = 0x1000 })), wantErr: "p_paddr 0x1000 differs from p_vaddr 0x100000"},
		{name: "segment ends above 4 GiB", input: fixed(kernel(func(s *synthELF) {
			s.segs = append(s.segs, synthSeg{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_W, vaddr: 0xffff_f000, paddr: 0xffff_f000, memsz: 0x2000})
		})), wantErr: "above 4 GiB"},
		{name: "segment linked high", input: fixed(kernel(func(s *synthELF) {
			s.segs[0] = textSeg(0xffff_ffff_8000_0000)
			s.entry = 0xffff_ffff_8000_0000
		})), wantErr: "above 4 GiB"},
		{name: "malformed note segment", input: fixed(kernel(func(s *synthELF) {
			s.segs = append(s.segs, synthSeg{typ: elf.PT_NOTE, flags: elf.PF_R, data: []byte{4, 0, 0, 0, 8}})
		})), wantErr: "truncated note header"},
		{name: "note overrunning its segment", input: fixed(kernel(func(s *synthELF) {
			s.segs = append(s.segs, synthSeg{typ: elf.PT_NOTE, flags: elf.PF_R, data: []byte{4, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0, 'X', 'e', 'n', 0}})
		})), wantErr: "overruns its segment"},
		{name: "entry outside any segment", input: fixed(kernel(func(s *synthELF) { s.entry = 0x300000 })), wantErr: "not inside an executable PT_LOAD"},
		{name: "entry in a data segment", input: fixed(kernel(func(s *synthELF) { s.segs[0].flags = elf.PF_R | elf.PF_W })), wantErr: "not inside an executable PT_LOAD"},
		{name: "entry symbol without a symbol table", input: fixed(kernel(nil)), entrySymbol: "main.entry", wantErr: "looking up entry symbol \"main.entry\""},
		{name: "missing entry symbol", input: goProgram, entrySymbol: "main.nosuch", wantErr: "entry symbol \"main.nosuch\" not found"},
		{name: "already has a PVH note", input: func(t *testing.T) []byte {
			im, err := addPVHNote(kernel(nil), "")
			if err != nil {
				t.Fatal(err)
			}
			return im.data
		}, wantErr: "already holds a PVH entry note"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, err := addPVHNote(tt.input(t), tt.entrySymbol)
			if err == nil {
				t.Fatalf("addPVHNote succeeded (entry %#x), want an error containing %q", im.entry, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "kernel")
	if err := os.WriteFile(in, kernel(nil), 0o644); err != nil {
		t.Fatal(err)
	}
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image")
	tests := []struct {
		name       string
		args       []string
		wantErr    string
		wantUsage  bool
		wantStdout string
	}{
		{name: "no arguments is a usage error", args: nil, wantErr: "need -o OUT", wantUsage: true},
		{name: "missing -o is a usage error", args: []string{in}, wantErr: "need -o OUT", wantUsage: true},
		{name: "two inputs is a usage error", args: []string{"-o", out, in, in}, wantErr: "exactly one IN", wantUsage: true},
		{name: "unknown flag is a usage error", args: []string{"-x", in}, wantErr: "flag provided but not defined", wantUsage: true},
		{name: "missing input file", args: []string{"-o", out, filepath.Join(dir, "nosuch")}, wantErr: "reading input"},
		{name: "input that is not ELF names the file", args: []string{"-o", out, notELF}, wantErr: notELF + ": not an ELF file"},
		{name: "writes the image and a summary", args: []string{"-o", out, in}, wantStdout: "mkimage: " + out + ": PVH entry 0x100000 (e_entry), load [0x100000, 0x100010) 1 KiB\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run error %v, want one containing %q", err, tt.wantErr)
				}
				if got := err.Error(); strings.HasPrefix(got, errUsage.Error()) != tt.wantUsage {
					t.Errorf("usage error = %v, want %v (%q)", !tt.wantUsage, tt.wantUsage, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o755 {
				t.Errorf("image mode %v, want 0755", st.Mode().Perm())
			}
		})
	}
}

func TestRunInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel")
	in := kernel(nil)
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", path, path}, io.Discard, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, in, out, 0x100000)
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after an in-place run, want 1 (temporary file left behind?)", len(entries))
	}
}
