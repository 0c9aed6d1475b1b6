package kernel

import "unsafe"

// PVH boot information (Xen public header arch-x86/hvm/start_info.h).
const (
	pvhMagic   = 0x336ec578
	e820RAM    = 1
	maxMemmap  = 64
	maxCmdline = 4096
)

// What _rt0_pvh's RAM check (boot_amd64.s) uses besides start_info: it
// runs before console.Init, so it names COM1's registers itself (16550
// datasheet; console.go has the same), and it exits as exitQEMU does.
const (
	com1Data            = 0x3f8 // transmit holding register
	com1LineStatus      = 0x3fd // line status register
	com1THRE            = 0x20  // line status: transmit holding register empty
	debugExitPort       = 0xf4  // QEMU's isa-debug-exit (qemu.sh's iobase)
	statusKernelFailure = 3     // the status of the kernel's own failures
)

type hvmStartInfo struct {
	Magic         uint32
	Version       uint32
	Flags         uint32
	NrModules     uint32
	ModlistPaddr  uint64
	CmdlinePaddr  uint64
	RSDPPaddr     uint64
	MemmapPaddr   uint64 // version 1 and later
	MemmapEntries uint32
	Reserved      uint32
}

type memmapEntry struct {
	Addr, Size uint64
	Type       uint32
	Reserved   uint32
}

// bootInfo is what kmain keeps of start_info, copied out of low memory
// before the allocator may hand that memory out.
type bootInfo struct {
	memmap  [maxMemmap]memmapEntry // RAM and reserved ranges
	nmem    int                    // entries used in memmap
	cmdline [maxCmdline]byte       // the kernel command line
	ncmd    int                    // its length
	rsdp    uint64                 // ACPI RSDP, 0 if absent
}

var boot bootInfo

// readStartInfo copies the PVH start_info at phys into boot.
func readStartInfo(phys uint64) bool {
	si := (*hvmStartInfo)(physPtr(phys))
	if si.Magic != pvhMagic {
		return false
	}
	boot.rsdp = si.RSDPPaddr
	if si.CmdlinePaddr != 0 {
		src := physBytes(si.CmdlinePaddr, maxCmdline-1)
		for boot.ncmd < len(src) && src[boot.ncmd] != 0 {
			boot.cmdline[boot.ncmd] = src[boot.ncmd]
			boot.ncmd++
		}
	}
	if si.Version >= 1 && si.MemmapPaddr != 0 {
		n := int(si.MemmapEntries)
		if n > maxMemmap {
			n = maxMemmap
		}
		entries := unsafe.Slice((*memmapEntry)(physPtr(si.MemmapPaddr)), n)
		boot.nmem = copy(boot.memmap[:], entries)
	}
	return true
}
