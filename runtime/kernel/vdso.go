package kernel

// The vDSO: a minimal ELF shared object the kernel hands the program
// through AT_SYSINFO_EHDR, exporting __vdso_clock_gettime (version
// LINUX_2.6), so that the Go runtime reads the clock without a system call.
// Go reads the clock tens of thousands of times a second under network
// load (its timers, gVisor's TCP timestamps and timers); as a system call
// each read costs a trap and a full save of the extended state.
//
// The image holds only what the Go runtime's vDSO parser reads
// (runtime/vdso_linux.go): the ELF header, a PT_LOAD and a PT_DYNAMIC
// program header, the dynamic section (DT_HASH, DT_STRTAB, DT_SYMTAB,
// DT_VERSYM, DT_VERDEF), the SysV hash table, the symbol, version and
// string tables. The function itself is vdsoClockGettime in
// vdso_amd64.s, in the kernel's text: the symbol's value is its distance
// from the image (the program runs in the kernel's address space, so
// every kernel address is reachable from it). __vdso_getrandom is
// deliberately absent: Go would use it for all its random numbers.

// ELF constants (System V ABI, ELF-64 object file format).
const (
	elfPTLoad     = 1
	elfPTDynamic  = 2
	elfDTNull     = 0
	elfDTHash     = 4
	elfDTStrtab   = 5
	elfDTSymtab   = 6
	elfDTVersym   = 0x6ffffff0
	elfDTVerdef   = 0x6ffffffc
	elfVerFlgBase = 1
	elfSymFunc    = 1<<4 | 2 // STB_GLOBAL, STT_FUNC
	atSysinfoEhdr = 33       // auxv key of the vDSO's address
)

// The image's layout: offsets of each part (aligned as the ELF-64 structures
// need) and its size.
const (
	vdsoPhdrOff   = 64
	vdsoDynOff    = vdsoPhdrOff + 2*56
	vdsoHashOff   = vdsoDynOff + 6*16
	vdsoSymOff    = vdsoHashOff + 24
	vdsoVersymOff = vdsoSymOff + 2*24
	vdsoVerdefOff = vdsoVersymOff + 8
	vdsoStrOff    = vdsoVerdefOff + 2*(20+8)
	vdsoSize      = vdsoStrOff + len(vdsoStrings)
)

// vdsoStrings is the string table; the offsets below index it.
const vdsoStrings = "\x00__vdso_clock_gettime\x00linux-vdso.so.1\x00LINUX_2.6\x00"

const (
	vdsoStrClock   uint32 = 1
	vdsoStrSoname         = vdsoStrClock + uint32(len("__vdso_clock_gettime")) + 1
	vdsoStrVersion        = vdsoStrSoname + uint32(len("linux-vdso.so.1")) + 1
)

// vdsoImage holds the image; uint64 words keep it 8-byte aligned.
var vdsoImage [(vdsoSize + 7) / 8]uint64

// initVDSO writes the image and returns its address for the auxiliary
// vector.
func initVDSO() uint64 {
	b := vdsoBytes()
	base := addrOf(unsafePointer(&b[0]))
	// ELF header: 64-bit, little-endian, ET_DYN, x86-64.
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 3)  // e_type ET_DYN
	le.PutUint16(b[18:], 62) // e_machine EM_X86_64
	le.PutUint32(b[20:], 1)  // e_version
	le.PutUint64(b[32:], vdsoPhdrOff)
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[54:], 56) // e_phentsize
	le.PutUint16(b[56:], 2)  // e_phnum
	// Program headers: the image loaded at virtual address 0, and where
	// its dynamic section is.
	phdr := func(off int, typ uint32, offset, size uint64) {
		le.PutUint32(b[off:], typ)
		le.PutUint32(b[off+4:], 4) // PF_R
		le.PutUint64(b[off+8:], offset)
		le.PutUint64(b[off+16:], offset) // p_vaddr
		le.PutUint64(b[off+24:], offset) // p_paddr
		le.PutUint64(b[off+32:], size)   // p_filesz
		le.PutUint64(b[off+40:], size)   // p_memsz
		le.PutUint64(b[off+48:], 8)      // p_align
	}
	phdr(vdsoPhdrOff, elfPTLoad, 0, uint64(vdsoSize))
	phdr(vdsoPhdrOff+56, elfPTDynamic, vdsoDynOff, 6*16)
	// Dynamic section (values are virtual addresses, here offsets).
	for i, d := range [...][2]uint64{
		{elfDTHash, vdsoHashOff}, {elfDTStrtab, vdsoStrOff}, {elfDTSymtab, vdsoSymOff},
		{elfDTVersym, vdsoVersymOff}, {elfDTVerdef, vdsoVerdefOff}, {elfDTNull, 0},
	} {
		le.PutUint64(b[vdsoDynOff+16*i:], d[0])
		le.PutUint64(b[vdsoDynOff+16*i+8:], d[1])
	}
	// SysV hash table: one bucket holding symbol 1; chains end at 0.
	for i, w := range [...]uint32{1, 2, 1, 0, 0} {
		le.PutUint32(b[vdsoHashOff+4*i:], w)
	}
	// Symbol 1: __vdso_clock_gettime (symbol 0 is the null symbol).
	sym := b[vdsoSymOff+24:]
	le.PutUint32(sym, vdsoStrClock)
	sym[4] = elfSymFunc
	le.PutUint16(sym[6:], 1) // st_shndx: defined (any section but SHN_UNDEF)
	le.PutUint64(sym[8:], uint64(vdsoClockGettimeAddr())-base)
	// Version of each symbol: symbol 1 has LINUX_2.6, version index 2.
	le.PutUint16(b[vdsoVersymOff+2:], 2)
	// Version definitions: the file itself (index 1), then LINUX_2.6.
	verdef := func(off int, flags, ndx uint16, hash, name, next uint32) {
		le.PutUint16(b[off:], 1) // vd_version
		le.PutUint16(b[off+2:], flags)
		le.PutUint16(b[off+4:], ndx)
		le.PutUint16(b[off+6:], 1) // vd_cnt
		le.PutUint32(b[off+8:], hash)
		le.PutUint32(b[off+12:], 20) // vd_aux: the Verdaux follows
		le.PutUint32(b[off+16:], next)
		le.PutUint32(b[off+20:], name) // vda_name
	}
	verdef(vdsoVerdefOff, elfVerFlgBase, 1, elfHash("linux-vdso.so.1"), vdsoStrSoname, 28)
	verdef(vdsoVerdefOff+28, 0, 2, elfHash("LINUX_2.6"), vdsoStrVersion, 0)
	copy(b[vdsoStrOff:], vdsoStrings)
	return base
}

// elfHash is the System V ABI's symbol hash.
func elfHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = h<<4 + uint32(s[i])
		g := h & 0xf0000000
		h ^= g >> 24
		h &^= g
	}
	return h
}

// vdsoClockGettime is __vdso_clock_gettime(clockid, *timespec) with the
// C calling convention: CLOCK_REALTIME and CLOCK_MONOTONIC with their
// coarse, raw and boot-time variants read the TSC as nanotime does; other
// clocks make the system call. It is never called from Go.
func vdsoClockGettime()

// vdsoClockGettimeAddr returns vdsoClockGettime's address.
func vdsoClockGettimeAddr() uintptr
