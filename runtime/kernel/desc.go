package kernel

import (
	"unsafe"

	"github.com/govirtio/govirtio/runtime/cpu"
)

// The GDT: null, 64-bit kernel code (0x08), kernel data (0x10), and the
// TSS descriptor (0x18, two slots). _rt0_pvh loads it first with the TSS
// slots empty and writes gdtr's base.
var gdt = [8]uint64{0, 0x00af9a000000ffff, 0x00cf92000000ffff}

// gdtr is the LGDT pseudo-descriptor: limit in bytes 0-1, base in 2-9.
var gdtr = [2]uint64{uint64(len(gdt)*8 - 1)}

// tss is the 64-bit task-state segment (Intel SDM Vol. 3 §7.7), 104 bytes
// of 32-bit words because its 64-bit fields sit at offsets 4 mod 8: RSPn
// at 4+8n, ISTn at 36+8(n-1), the I/O map base in the top half of word 25.
// Only the interrupt stack table matters here.
type tss [26]uint32

func (t *tss) setIST(n int, sp uint64) {
	w := (36 + 8*(n-1)) / 4
	t[w], t[w+1] = uint32(sp), uint32(sp>>32)
}

// idtEntry is a 64-bit interrupt gate (Intel SDM Vol. 3 §6.14.1).
type idtEntry struct {
	offLow  uint16
	sel     uint16
	ist     uint8
	typ     uint8
	offMid  uint16
	offHigh uint32
	_       uint32
}

const (
	gateInterrupt = 0x8e // present, DPL 0, 64-bit interrupt gate
	istTrap       = 1    // interrupts: the trap stack
	istFault      = 2    // exceptions: the fault stack
)

var (
	theTSS  tss
	idt     [256]idtEntry
	idtr    [2]uint64
	vectors [256]uint64 // stub addresses, from vectorAddrs
)

func vectorAddrs(p *[256]uint64)
func loadGDT(p *[2]uint64)
func loadIDT(p *[2]uint64)
func loadTR(sel uint16)
func xsaveInto(p uintptr)
func rt0Linux() uint64
func syscallEntryAddr() uint64
func idleLoopAddr() uint64
func enterFrame(f *Frame)

// initDescriptors installs the TSS (with its interrupt stacks), the IDT
// and the SYSCALL entry.
func initDescriptors() {
	theTSS.setIST(istTrap, uint64(trapStackTop))
	theTSS.setIST(istFault, uint64(faultStackTop()))
	theTSS[25] = uint32(unsafe.Sizeof(theTSS)) << 16 // no I/O permission map
	base := uint64(uintptr(unsafe.Pointer(&theTSS)))
	limit := uint64(unsafe.Sizeof(theTSS) - 1)
	gdt[3] = limit&0xffff | (base&0xffffff)<<16 | 0x89<<40 | (limit>>16&0xf)<<48 | (base>>24&0xff)<<56
	gdt[4] = base >> 32
	gdtr[0] = uint64(len(gdt)*8-1) | uint64(uintptr(unsafe.Pointer(&gdt)))<<16
	gdtr[1] = uint64(uintptr(unsafe.Pointer(&gdt))) >> 48
	loadGDT(&gdtr)
	loadTR(selTSS)

	vectorAddrs(&vectors)
	for v := range idt {
		a := vectors[v]
		ist := uint8(istTrap)
		if v < 32 {
			ist = istFault
		}
		idt[v] = idtEntry{
			offLow: uint16(a), sel: selKernelCode, ist: ist, typ: gateInterrupt,
			offMid: uint16(a >> 16), offHigh: uint32(a >> 32),
		}
	}
	idtr[0] = uint64(len(idt)*16-1) | uint64(uintptr(unsafe.Pointer(&idt)))<<16
	idtr[1] = uint64(uintptr(unsafe.Pointer(&idt))) >> 48
	loadIDT(&idtr)

	// SYSCALL: CS = STAR[47:32] (SS = that + 8), entry LSTAR, and RFLAGS
	// bits in FMASK cleared (interrupts off, direction up).
	efer := cpu.ReadMSR(cpu.MSREFER) | cpu.EFERSCE
	if nxEnabled {
		efer |= cpu.EFERNXE
	}
	cpu.WriteMSR(cpu.MSREFER, efer)
	cpu.WriteMSR(cpu.MSRSTAR, uint64(selKernelCode)<<32)
	cpu.WriteMSR(cpu.MSRLSTAR, syscallEntryAddr())
	cpu.WriteMSR(cpu.MSRFMASK, cpu.FlagIF|cpu.FlagTF|cpu.FlagDF|cpu.FlagAC)
}
