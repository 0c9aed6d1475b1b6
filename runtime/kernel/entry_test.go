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
// (Intel syntax as x86asm prints it). ADDR32 sequences appear as
// "addr32 REG SYMBOL": CALL next; POP EDX; LEA REG, [disp32]; ADD REG, EDX;
// ADD REG, 7, which must compute SYMBOL's absolute address.
var pvhEntry32 = []string{
	"cli",
	"mov esp, 0x7000",
	"mov esi, ebx",
	"cld",
	"addr32 ebp github.com/govirtio/govirtio/runtime/kernel.bootPageTables",
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
	"mov dword ptr [edi], eax",
	"add eax, 0x200000",
	"add edi, 0x8",
	"dec ecx",
	"jnz LOOP",
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
	"addr32 ebx github.com/govirtio/govirtio/runtime/kernel.gdt",
	"addr32 eax github.com/govirtio/govirtio/runtime/kernel.gdtr",
	"mov dword ptr [eax+0x2], ebx",
	"lgdt ptr [eax]",
	"addr32 eax github.com/govirtio/govirtio/runtime/kernel.entry64",
	"push 0x8",
	"push eax",
	"ret far",
}

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
	addr := map[string]uint64{}
	var entry elf.Symbol
	for _, s := range syms {
		addr[s.Name] = s.Value
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
	text := f.Section(".text")
	data, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	code := data[entry.Value-text.Addr : entry.Value-text.Addr+entry.Size]

	// Decode, folding ADDR32 sequences and the loop target.
	var got []string
	var loop uint64
	leaAbs := regexp.MustCompile(`^lea (\w+), ptr \[(0x[0-9a-f]+)\]$`)
	pc := entry.Value
	var insts []string
	var pcs []uint64
	for len(code) > 0 {
		inst, err := x86asm.Decode(code, 32)
		if err != nil {
			t.Fatalf("%#x: %v", pc, err)
		}
		insts = append(insts, x86asm.IntelSyntax(inst, pc, nil))
		pcs = append(pcs, pc)
		code = code[inst.Len:]
		pc += uint64(inst.Len)
	}
	for i := 0; i < len(insts); i++ {
		in := insts[i]
		if in == "mov dword ptr [edi], eax" {
			loop = pcs[i]
		}
		if strings.HasPrefix(in, "call ") && i+4 < len(insts) && insts[i+1] == "pop edx" {
			m := leaAbs.FindStringSubmatch(insts[i+2])
			if m == nil || insts[i+3] != "add "+m[1]+", edx" || insts[i+4] != "add "+m[1]+", 0x7" {
				t.Fatalf("%#x: malformed ADDR32 sequence %q", pcs[i], insts[i:i+5])
			}
			disp, _ := strconv.ParseUint(m[2], 0, 32)
			target := uint64(uint32(disp + pcs[i+1] + 7))
			name := "?"
			for n, a := range addr {
				if a == target && strings.Contains(n, "kernel.") {
					name = n
				}
			}
			got = append(got, fmt.Sprintf("addr32 %s %s", m[1], name))
			i += 4
			continue
		}
		if in == fmt.Sprintf("jnz %#x", loop) {
			in = "jnz LOOP"
		}
		got = append(got, in)
		if in == "ret far" {
			break
		}
	}
	if len(got) != len(pvhEntry32) {
		t.Errorf("decoded %d instructions, want %d:\n%s", len(got), len(pvhEntry32), strings.Join(got, "\n"))
	}
	for i := range min(len(got), len(pvhEntry32)) {
		if got[i] != pvhEntry32[i] {
			t.Errorf("instruction %d: got %q, want %q", i, got[i], pvhEntry32[i])
		}
	}
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
		if kernelCode.MatchString(fn) && !allowed[fn] {
			if m := forbidden.FindString(line); m != "" {
				t.Errorf("%s: %s", fn, m)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("found only %d kernel functions in the image; is the objdump parse right?", checked)
	}
}
