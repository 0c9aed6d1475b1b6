package kernel

import (
	"debug/elf"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/govirtio/govirtio/internal/boottest"
)

// pvhEntry32 is what _rt0_pvh must mean to a CPU in 32-bit protected mode
// (Intel syntax as x86asm prints it, symbols without their module path).
// ADDR32 sequences appear as "addr32 REG SYMBOL": CALL next; POP EDX; LEA
// REG, [disp32]; ADD REG, EDX; ADD REG, 7, which must compute SYMBOL's
// absolute address. Branches inside the function read "@N", N being the
// index of the target in this list; calls name their target.
var pvhEntry32 = []string{
	"cli",
	"mov esp, 0x7000",
	"mov esi, ebx",
	"cld",
	// The RAM check: the top of RAM from the PVH memory map (into eax).
	"cmp dword ptr [ebx], 0x336ec578",
	"jnz @64",
	"cmp dword ptr [ebx+0x4], 0x1",
	"jb @64",
	"cmp dword ptr [ebx+0x2c], 0x0",
	"jnz @64",
	"mov edi, dword ptr [ebx+0x28]",
	"mov ecx, dword ptr [ebx+0x30]",
	"test edi, edi",
	"jz @64",
	"test ecx, ecx",
	"jz @64",
	"addr32 ebp runtime.text",
	"xor eax, eax",
	"cmp dword ptr [edi+0x10], 0x1", // 18: memloop
	"jnz @33",
	"cmp dword ptr [edi+0x4], 0x0",
	"jnz @33",
	"mov edx, dword ptr [edi]",
	"cmp edx, ebp",
	"jnbe @33",
	"add edx, dword ptr [edi+0x8]",
	"jb @29",
	"cmp dword ptr [edi+0xc], 0x0",
	"jz @30",
	"mov edx, 0xffffffff", // 29: memsat
	"cmp edx, eax",        // 30: memend
	"jbe @33",
	"mov eax, edx",
	"add edi, 0x18", // 33: memnext
	"dec ecx",
	"jnz @18",
	// What the kernel needs: up to the frame bitmap's used part.
	"mov ebx, eax",
	"shr ebx, 0xc",
	"add ebx, 0x3f",
	"shr ebx, 0x6",
	"shl ebx, 0x3",
	"addr32 edi kernel.bitmapStore",
	"add ebx, edi",
	"cmp eax, ebx",
	"jnb @64",
	// Too little: the message and isa-debug-exit.
	"add ebx, 0xfffff",
	"shr ebx, 0x14",
	"push eax",
	"push ebx",
	"addr32 esi kernel.lowRAMNeeds",
	"call kernel.puts32",
	"pop eax",
	"call kernel.putDec32",
	"addr32 esi kernel.lowRAMHas",
	"call kernel.puts32",
	"pop eax",
	"call kernel.putMiB32",
	"addr32 esi kernel.lowRAMEnd",
	"call kernel.puts32",
	"mov eax, 0x3",
	"mov edx, 0xf4",
	"out dx, al",
	"hlt", // 62: ramhalt
	"jmp @62",
	// Enough: the boot identity map.
	"addr32 ebp kernel.bootPageTables", // 64: ramok
	"add ebp, 0xfff",
	"and ebp, 0xfffff000",
	"mov edi, ebp",
	"xor eax, eax",
	"mov ecx, 0x1800",
	"rep stosd dword ptr [edi]",
	"lea eax, ptr [ebp+0x1003]",
	"mov dword ptr [ebp], eax",
	"lea eax, ptr [ebp+0x2003]",
	"mov dword ptr [ebp+0x1000], eax",
	"add eax, 0x1000",
	"mov dword ptr [ebp+0x1008], eax",
	"add eax, 0x1000",
	"mov dword ptr [ebp+0x1010], eax",
	"add eax, 0x1000",
	"mov dword ptr [ebp+0x1018], eax",
	"lea edi, ptr [ebp+0x2000]",
	"mov eax, 0x83",
	"mov ecx, 0x800",
	"mov dword ptr [edi], eax", // 84: pdloop
	"add eax, 0x200000",
	"add edi, 0x8",
	"dec ecx",
	"jnz @84",
	"mov eax, cr4",
	"or eax, 0x20",
	"mov cr4, eax",
	"mov cr3, ebp",
	"mov ecx, 0xc0000080",
	"rdmsr",
	"or eax, 0x100",
	"wrmsr",
	"mov eax, cr0",
	"or eax, 0x80010001",
	"mov cr0, eax",
	"addr32 ebx kernel.gdt",
	"addr32 eax kernel.gdtr",
	"mov dword ptr [eax+0x2], ebx",
	"lgdt ptr [eax]",
	"addr32 eax kernel.entry64",
	"push 0x8",
	"push eax",
	"ret far",
}

// The COM1 helpers _rt0_pvh calls in 32-bit mode.
var (
	puts32Want = []string{
		"movzx eax, byte ptr [esi]", // 0
		"test eax, eax",
		"jz @6",
		"call kernel.putc32",
		"inc esi",
		"jmp @0",
		"ret", // 6
	}
	putDec32Want = []string{
		"mov ecx, 0xa",
		"xor ebx, ebx",
		"xor edx, edx", // 2
		"div ecx",
		"push edx",
		"inc ebx",
		"test eax, eax",
		"jnz @2",
		"pop eax", // 8
		"add eax, 0x30",
		"call kernel.putc32",
		"dec ebx",
		"jnz @8",
		"ret",
	}
	putMiB32Want = []string{
		"push eax",
		"shr eax, 0x14",
		"call kernel.putDec32",
		"pop eax",
		"and eax, 0xfffff",
		"jz @19",
		"imul eax, eax, 0x64",
		"shr eax, 0x14",
		"push eax",
		"mov eax, 0x2e",
		"call kernel.putc32",
		"pop eax",
		"cmp eax, 0xa",
		"jnb @18",
		"push eax",
		"mov eax, 0x30",
		"call kernel.putc32",
		"pop eax",
		"call kernel.putDec32", // 18
		"ret",                  // 19
	}
	putc32Want = []string{
		"push ecx",
		"push eax",
		"mov ecx, 0x100000",
		"mov edx, 0x3fd",
		"in al, dx", // 4
		"test al, 0x20",
		"jnz @9",
		"dec ecx",
		"jnz @4",
		"pop eax", // 9
		"pop ecx",
		"mov edx, 0x3f8",
		"out dx, al",
		"ret",
	}
)

func TestPVHEntryDecodesIn32BitMode(t *testing.T) {
	img := boottest.BuildImage(t, "examples/hello")
	f, err := elf.Open(strings.TrimSuffix(img, ".img") + ".elf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var entry elf.Symbol
	for _, s := range syms {
		if s.Name == "_rt0_pvh" {
			entry = s
		}
	}
	if entry.Name == "" {
		t.Fatal("no _rt0_pvh symbol")
	}
	if f.Entry != entry.Value {
		t.Errorf("ELF entry %#x, want _rt0_pvh at %#x", f.Entry, entry.Value)
	}
	for _, fn := range []struct {
		name string
		want []string
	}{
		{"_rt0_pvh", pvhEntry32},
		{"kernel.puts32", puts32Want},
		{"kernel.putDec32", putDec32Want},
		{"kernel.putMiB32", putMiB32Want},
		{"kernel.putc32", putc32Want},
	} {
		t.Run(fn.name, func(t *testing.T) {
			got := decode32(t, f, syms, fn.name)
			if len(got) != len(fn.want) {
				t.Errorf("decoded %d instructions, want %d:\n%s", len(got), len(fn.want), strings.Join(got, "\n"))
			}
			for i := range min(len(got), len(fn.want)) {
				if got[i] != fn.want[i] {
					t.Errorf("instruction %d: got %q, want %q", i, got[i], fn.want[i])
				}
			}
		})
	}
}

// shortName drops the module path from a symbol name.
func shortName(n string) string {
	return strings.TrimPrefix(n, "github.com/govirtio/govirtio/runtime/")
}

// decode32 decodes the function name (short form) in 32-bit mode up to
// its end or a far return, folding ADDR32 sequences, naming call targets
// and numbering branch targets (see pvhEntry32). Padding after the last
// instruction (int3, nop) is dropped.
func decode32(t *testing.T, f *elf.File, syms []elf.Symbol, name string) []string {
	t.Helper()
	var fn elf.Symbol
	at := map[uint64][]string{}
	for _, s := range syms {
		if shortName(s.Name) == name {
			fn = s
		}
		at[s.Value] = append(at[s.Value], shortName(s.Name))
	}
	if fn.Name == "" {
		t.Fatalf("no symbol %s", name)
	}
	symAt := func(a uint64) string {
		best := "?"
		for _, n := range at[a] {
			if strings.HasPrefix(n, "kernel.") {
				return n
			}
			if strings.HasPrefix(n, "runtime.") && best == "?" {
				best = n
			}
		}
		return best
	}
	text := f.Section(".text")
	data, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	code := data[fn.Value-text.Addr : fn.Value-text.Addr+fn.Size]
	var insts []string
	var pcs []uint64
	for pc := fn.Value; len(code) > 0; {
		inst, err := x86asm.Decode(code, 32)
		if err != nil {
			t.Fatalf("%#x: %v", pc, err)
		}
		insts = append(insts, x86asm.IntelSyntax(inst, pc, nil))
		pcs = append(pcs, pc)
		code = code[inst.Len:]
		pc += uint64(inst.Len)
		if insts[len(insts)-1] == "ret far" {
			break
		}
	}
	for len(insts) > 0 && (insts[len(insts)-1] == "int3" || insts[len(insts)-1] == "nop") {
		insts, pcs = insts[:len(insts)-1], pcs[:len(pcs)-1]
	}

	// Fold ADDR32 sequences, remembering where each folded line starts.
	leaAbs := regexp.MustCompile(`^lea (\w+), ptr \[(-?0x[0-9a-f]+)\]$`)
	var folded []string
	index := map[uint64]int{}
	for i := 0; i < len(insts); i++ {
		index[pcs[i]] = len(folded)
		in := insts[i]
		if strings.HasPrefix(in, "call ") && i+4 < len(insts) && insts[i+1] == "pop edx" {
			m := leaAbs.FindStringSubmatch(insts[i+2])
			if m == nil || insts[i+3] != "add "+m[1]+", edx" || insts[i+4] != "add "+m[1]+", 0x7" {
				t.Fatalf("%#x: malformed ADDR32 sequence %q", pcs[i], insts[i:i+5])
			}
			disp, _ := strconv.ParseInt(m[2], 0, 64)
			target := uint64(uint32(int64(pcs[i+1]) + disp + 7))
			folded = append(folded, fmt.Sprintf("addr32 %s %s", m[1], symAt(target)))
			i += 4
			continue
		}
		folded = append(folded, in)
	}
	// Name branch and call targets.
	branch := regexp.MustCompile(`^(j\w+|call) (0x[0-9a-f]+)$`)
	for i, in := range folded {
		m := branch.FindStringSubmatch(in)
		if m == nil {
			continue
		}
		target, _ := strconv.ParseUint(m[2], 0, 64)
		if n, ok := index[target]; ok && m[1] != "call" {
			folded[i] = fmt.Sprintf("%s @%d", m[1], n)
		} else if target >= fn.Value && target < fn.Value+fn.Size {
			folded[i] = fmt.Sprintf("%s %#x (not an instruction start)", m[1], target)
		} else {
			folded[i] = fmt.Sprintf("%s %s", m[1], symAt(target))
		}
	}
	return folded
}

// TestKernelDoesNotAllocate checks the rule kernel code lives by: code that
// runs in trap context (the kernel and the packages it calls) never calls
// the Go allocator nor a write barrier, which need an m and a p the kernel
// does not have. The exceptions run elsewhere: reportCrash runs as
// ordinary Go on the crashing thread; the boot-time functions run before
// the Go runtime starts (no GC, so write barriers are off), and their
// appends never grow.
func TestKernelDoesNotAllocate(t *testing.T) {
	img := boottest.BuildImage(t, "examples/hello")
	out, err := exec.Command("go", "tool", "objdump", strings.TrimSuffix(img, ".img")+".elf").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/govirtio/govirtio/runtime/kernel.reportCrash":       true,
		"github.com/govirtio/govirtio/runtime/kernel.buildInitialStack": true,
		"github.com/govirtio/govirtio/runtime/kernel.initMemory":        true,
		"github.com/govirtio/govirtio/runtime/mem.(*PageTable).Init":    true,
		"github.com/govirtio/govirtio/runtime/mem.(*Frames).Init":       true,
	}
	kernelCode := regexp.MustCompile(`^github\.com/govirtio/govirtio/runtime/(kernel|mem|console|cpu)\.`)
	// The socket serve loop (sockserve.go) is the program's code, run by
	// its goroutines: it allocates freely.
	serveLoop := regexp.MustCompile(`^github\.com/govirtio/govirtio/runtime/kernel\.(\(\*sockServer\)|\(\*SocketHandle\)|ServeSockets|openCloseQueue|iovBufs|userMem|putAddr)`)
	forbidden := regexp.MustCompile(`CALL runtime\.(newobject|mallocgc\w*|convT\w*|growslice|makeslice\w*|concatstring\w*|slicebytetostring|rawstring\w*|gcWriteBarrier\w*|gopanic|panicwrap)\(SB\)`)
	var fn string
	checked := 0
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "TEXT "); ok {
			fn = strings.TrimSuffix(strings.Fields(name)[0], "(SB)")
			if kernelCode.MatchString(fn) {
				checked++
			}
			continue
		}
		if kernelCode.MatchString(fn) && !allowed[fn] && !serveLoop.MatchString(fn) {
			if m := forbidden.FindString(line); m != "" {
				t.Errorf("%s: %s", fn, m)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("found only %d kernel functions in the image; is the objdump parse right?", checked)
	}
}

// TestKernelDataBelowFrameBitmap checks what _rt0_pvh's RAM check rests
// on: RAM that reaches the used part of bitmapStore holds all the kernel's
// own variables (those of kernel, console, cpu and mem, which kmain uses
// before releaseZeroBSS lets the rest of the bss be backed on demand) and
// the image's file-backed data. The linker orders data by size, so the
// bitmap, the kernel's largest variable, comes last; a kernel variable
// larger than it would break the check.
func TestKernelDataBelowFrameBitmap(t *testing.T) {
	img := boottest.BuildImage(t, "examples/hello")
	f, err := elf.Open(strings.TrimSuffix(img, ".img") + ".elf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	var bitmap, edata elf.Symbol
	for _, s := range syms {
		switch shortName(s.Name) {
		case "kernel.bitmapStore":
			bitmap = s
		case "runtime.edata":
			edata = s
		}
	}
	if bitmap.Name == "" || edata.Name == "" {
		t.Fatal("no kernel.bitmapStore or runtime.edata symbol")
	}
	if edata.Value > bitmap.Value {
		t.Errorf("file-backed data ends at %#x, past the frame bitmap at %#x", edata.Value, bitmap.Value)
	}
	kernelData := regexp.MustCompile(`^(kernel|console|cpu|mem)\.`)
	checked := 0
	for _, s := range syms {
		if int(s.Section) >= len(f.Sections) || s.Name == bitmap.Name {
			continue
		}
		switch f.Sections[s.Section].Name {
		case ".data", ".noptrdata", ".bss", ".noptrbss":
		default:
			continue
		}
		if !kernelData.MatchString(shortName(s.Name)) {
			continue
		}
		checked++
		if s.Value+s.Size > bitmap.Value {
			t.Errorf("%s [%#x, %#x) lies past the frame bitmap at %#x", s.Name, s.Value, s.Value+s.Size, bitmap.Value)
		}
	}
	if checked < 20 {
		t.Fatalf("found only %d kernel variables; is the symbol filter right?", checked)
	}
}
