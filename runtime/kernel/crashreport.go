package kernel

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/arch/x86/x86asm"
)

// reportCrash runs as ordinary Go code on the faulting thread (the kernel
// injected a call to it through crashTrampoline): it can allocate, so it
// does the part of the crash report the kernel cannot, the disassembly.
func reportCrash() {
	var b [crashRecordSize]byte
	_, _, errno := syscall.RawSyscall(SysCrashReport, uintptr(unsafePointer(&b[0])), uintptr(len(b)), 0)
	if errno != 0 {
		os.Exit(3)
	}
	le := binary.LittleEndian
	word := func(i int) uint64 { return le.Uint64(b[i*8:]) }
	rip := word(3)
	ncode := int(word(21))
	if ncode > 16 {
		ncode = 16
	}
	code := b[22*8 : 22*8+ncode]
	why := strings.TrimRight(string(b[22*8+16:]), "\x00")
	var text string
	if inst, err := x86asm.Decode(code, 64); err != nil {
		text = fmt.Sprintf("(cannot decode: %v)", err)
	} else {
		text = fmt.Sprintf("%s    ; %s", x86asm.GoSyntax(inst, rip, nil), x86asm.IntelSyntax(inst, rip, nil))
	}
	fmt.Fprintf(os.Stderr, "crash: %s: vector %d error %#x cr2 %#x\ncrash: faulting instruction at %#x: %s\n",
		why, word(0), word(1), word(2), rip, text)
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 3, 0, 0)
}
