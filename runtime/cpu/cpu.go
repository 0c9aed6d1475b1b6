package cpu

// Model-specific registers (Intel SDM Vol. 4).
const (
	MSRAPICBase     = 0x1b       // IA32_APIC_BASE
	MSRTSCDeadline  = 0x6e0      // IA32_TSC_DEADLINE
	MSREFER         = 0xc0000080 // IA32_EFER
	MSRSTAR         = 0xc0000081 // SYSCALL CS/SS selectors
	MSRLSTAR        = 0xc0000082 // SYSCALL 64-bit entry point
	MSRFMASK        = 0xc0000084 // RFLAGS bits cleared by SYSCALL
	MSRFSBase       = 0xc0000100
	MSRGSBase       = 0xc0000101
	MSRKernelGSBase = 0xc0000102
)

// EFER bits.
const (
	EFERSCE = 1 << 0  // SYSCALL enable
	EFERLME = 1 << 8  // long mode enable
	EFERNXE = 1 << 11 // no-execute enable
)

// RFLAGS bits.
const (
	FlagTF = 1 << 8
	FlagIF = 1 << 9
	FlagDF = 1 << 10
	FlagAC = 1 << 18
)

// In8 reads a byte from an I/O port.
func In8(port uint16) uint8

// In16 reads a 16-bit word from an I/O port.
func In16(port uint16) uint16

// In32 reads a 32-bit word from an I/O port.
func In32(port uint16) uint32

// Out8 writes a byte to an I/O port.
func Out8(port uint16, v uint8)

// Out16 writes a 16-bit word to an I/O port.
func Out16(port uint16, v uint16)

// Out32 writes a 32-bit word to an I/O port.
func Out32(port uint16, v uint32)

// ReadMSR reads a model-specific register.
func ReadMSR(msr uint32) uint64

// WriteMSR writes a model-specific register.
func WriteMSR(msr uint32, v uint64)

// CPUID executes CPUID with the given leaf and subleaf.
func CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// RDTSC reads the time-stamp counter.
func RDTSC() uint64

// ReadCR0, ReadCR2, ReadCR3 and ReadCR4 read control registers.
func ReadCR0() uint64
func ReadCR2() uint64
func ReadCR3() uint64
func ReadCR4() uint64

// WriteCR0, WriteCR3 and WriteCR4 write control registers. WriteCR3 also
// flushes the non-global TLB entries.
func WriteCR0(v uint64)
func WriteCR3(v uint64)
func WriteCR4(v uint64)

// XSetBV writes extended control register xcr (XCR0 enables XSAVE state
// components).
func XSetBV(xcr uint32, v uint64)

// Invlpg drops the TLB entry for the page holding addr.
func Invlpg(addr uintptr)

// Halt enables interrupts and halts until the next one, then disables them
// again (STI; HLT; CLI: the interrupt is taken between HLT and CLI).
func Halt()

// Pause is the spin-wait hint.
func Pause()

// RDRAND returns a hardware random number; ok is false when the CPU's
// generator had none ready (CF clear).
func RDRAND() (v uint64, ok bool)

// MMIO accessors: exactly one access of the given width at addr, never
// merged, split or elided by the compiler (device registers).
func MMIORead8(addr uintptr) uint8
func MMIORead16(addr uintptr) uint16
func MMIORead32(addr uintptr) uint32
func MMIORead64(addr uintptr) uint64
func MMIOWrite8(addr uintptr, v uint8)
func MMIOWrite16(addr uintptr, v uint16)
func MMIOWrite32(addr uintptr, v uint32)
func MMIOWrite64(addr uintptr, v uint64)
