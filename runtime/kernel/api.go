package kernel

import (
	"sync/atomic"
	"unsafe"

	"github.com/govirtio/govirtio/runtime/mem"
)

// System calls of govirtio's own, beyond Linux's, for the packages that
// give programs the machine (runtime/irq and the device-access code).
// Their numbers are far above Linux's so that they never collide.
const (
	// SysCrashReport copies the pending crash record (crash.go).
	SysCrashReport = 0x6776
	// SysSelfIPI(vector) raises vector on this CPU, as a device would.
	SysSelfIPI = 0x6777
	// SysMapDevice(phys, size) maps device registers uncached into the
	// direct map (at DirectMapBase+phys); it returns 0 or -errno.
	SysMapDevice = 0x6778
	// SysAPICID returns this CPU's local APIC ID, the destination of MSI
	// messages.
	SysAPICID = 0x6779
	// SysAllocDMA(size, align) returns the physical address of zeroed,
	// physically contiguous RAM (reachable at DirectMapBase+phys), never
	// reclaimed.
	SysAllocDMA = 0x677a
	// SysVirtToPhys(va) backs the page holding va if needed and returns
	// the physical address va maps to.
	SysVirtToPhys = 0x677b
	// SysKernelStats(buf, size) copies the kernel's counters (Stats) to
	// buf; see ReadStats.
	SysKernelStats = 0x677c
	// SysACPITable(sig, index, buf, size) copies up to size bytes of the
	// index'th ACPI table with signature sig (its four bytes read as a
	// little-endian number) to buf and returns the table's length, or
	// -ENOENT; see ACPITable.
	SysACPITable = 0x677d
	// SysSocketProvide(on) announces that a serve loop will answer socket
	// calls (ServeSockets): until one waits, socket calls queue instead of
	// failing with EAFNOSUPPORT; on=0 withdraws it (StopServingSockets).
	SysSocketProvide = 0x677e
	// SysSocketServe(tag, result, ready, readyNew, buf) answers a socket
	// call and waits for the next (socket.go).
	SysSocketServe = 0x677f
	// SysSocketReady(handle, mask|version<<32) reports a socket's events.
	SysSocketReady = 0x6780
	// SysSocketCloseQueue opens the queue of closed sockets (socket.go).
	SysSocketCloseQueue = 0x6781
)

// Interrupt vectors programs may use (see openDevice).
const (
	// VectorMSIFirst and VectorMSILast bound the vectors for MSI/MSI-X,
	// opened as /dev/irq/N.
	VectorMSIFirst = vectorMSIFirst
	VectorMSILast  = vectorMSILast
	// VectorGSIBase is the vector of GSI 0, opened as /dev/intx/G or
	// /dev/gsi/G: GSI G arrives on vector VectorGSIBase+G.
	VectorGSIBase = vectorINTxBase
)

// InterruptCount returns how many times the interrupt file fd (opened as
// /dev/irq/N or /dev/intx/G) has fired since it was opened, or 0 if fd is
// not one. It reads the kernel's memory, which the program shares, without
// a system call: runtime/irq waits for the count to change through the
// poller instead of reading the file, which saves two system calls per
// interrupt.
func InterruptCount(fd int) uint64 {
	f := fileFor(int64(fd))
	if f == nil || f.kind != fileIRQ {
		return 0
	}
	return atomic.LoadUint64(&f.fired)
}

// sysMapDeviceRange maps [phys, phys+size) for device access. RAM and the
// program's own address space are refused.
func sysMapDeviceRange(phys, size uint64) int64 {
	if size == 0 || size > 1<<32 || phys+size < phys || phys+size > maxPhysAddr {
		return -eINVAL
	}
	for i := 0; i < boot.nmem; i++ {
		e := boot.memmap[i]
		if e.Type == e820RAM && phys < e.Addr+e.Size && e.Addr < phys+size {
			return -eINVAL
		}
	}
	if err := mapDevice(phys, size); err != nil {
		return -eNOMEM
	}
	return 0
}

// sysAllocDMA takes size bytes of contiguous frames aligned to align.
func sysAllocDMA(size, align uint64) int64 {
	if size == 0 || size > 256<<20 {
		return -eINVAL
	}
	if align < mem.PageSize {
		align = mem.PageSize
	}
	if align&(align-1) != 0 || align > 1<<30 {
		return -eINVAL
	}
	n := (size + mem.PageSize - 1) / mem.PageSize
	p, err := frames.AllocContiguous(int(n), align)
	if err != nil {
		return -eNOMEM
	}
	clear(unsafe.Slice((*byte)(physPtr(p)), n*mem.PageSize))
	return int64(p)
}

// sysVirtToPhys translates va, backing it first if it is a program page
// not yet touched.
func sysVirtToPhys(va uint64) int64 {
	if !userRange(va, 1, false) {
		if _, _, ok := pageTable.Lookup(va); !ok {
			return -eFAULT
		}
	}
	pa, _, ok := pageTable.Lookup(va)
	if !ok {
		return -eFAULT
	}
	return int64(pa)
}

// DirectMapBase is where physical address 0 appears in the address space:
// RAM, DMA memory and mapped device registers are at DirectMapBase+phys.
const DirectMapBase = directMapBase

// maxPhysAddr bounds device register addresses (46 bits: what the direct
// map's half of the address space holds with room to spare).
const maxPhysAddr = 1 << 46

// sysSelfIPI raises vector on this CPU, as a device would; it is taken as
// soon as interrupts are on again.
func sysSelfIPI(vector uint64) int64 {
	if vector < vectorMSIFirst || vector > vectorMSILast {
		return -eINVAL
	}
	selfIPI(uint8(vector))
	return 0
}
