package machine

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"github.com/govirtio/govirtio/runtime/cpu"
	"github.com/govirtio/govirtio/runtime/kernel"
)

// Ports performs port I/O with IN and OUT instructions.
type Ports struct{}

func (Ports) In8(port uint16) uint8       { return cpu.In8(port) }
func (Ports) In16(port uint16) uint16     { return cpu.In16(port) }
func (Ports) In32(port uint16) uint32     { return cpu.In32(port) }
func (Ports) Out8(port uint16, v uint8)   { cpu.Out8(port, v) }
func (Ports) Out16(port uint16, v uint16) { cpu.Out16(port, v) }
func (Ports) Out32(port uint16, v uint32) { cpu.Out32(port, v) }

// Registers is a range of memory-mapped device registers, mapped uncached.
// Offsets are checked against the range: an access outside it panics, as
// a slice index would (it is a driver bug, not device input).
type Registers struct {
	base uintptr // virtual (= physical) address of offset 0
	size uint64  // bytes mapped
}

// MapRegisters maps size bytes of device registers at physical address
// phys (a BAR region); the mapping is uncached and lives for the program.
func MapRegisters(phys, size uint64) (*Registers, error) {
	if _, _, e := syscall.RawSyscall(kernel.SysMapDevice, uintptr(phys), uintptr(size), 0); e != 0 {
		return nil, fmt.Errorf("machine: map registers [%#x, %#x): %w", phys, phys+size, e)
	}
	return &Registers{base: uintptr(kernel.DirectMapBase + phys), size: size}, nil
}

func (r *Registers) at(off, width uint64) uintptr {
	if off+width > r.size || off+width < off {
		panic(fmt.Sprintf("machine: register offset %#x (width %d) outside a %#x-byte region", off, width, r.size))
	}
	return r.base + uintptr(off)
}

func (r *Registers) Read8(off uint64) uint8       { return cpu.MMIORead8(r.at(off, 1)) }
func (r *Registers) Read16(off uint64) uint16     { return cpu.MMIORead16(r.at(off, 2)) }
func (r *Registers) Read32(off uint64) uint32     { return cpu.MMIORead32(r.at(off, 4)) }
func (r *Registers) Read64(off uint64) uint64     { return cpu.MMIORead64(r.at(off, 8)) }
func (r *Registers) Write8(off uint64, v uint8)   { cpu.MMIOWrite8(r.at(off, 1), v) }
func (r *Registers) Write16(off uint64, v uint16) { cpu.MMIOWrite16(r.at(off, 2), v) }
func (r *Registers) Write32(off uint64, v uint32) { cpu.MMIOWrite32(r.at(off, 4), v) }
func (r *Registers) Write64(off uint64, v uint64) { cpu.MMIOWrite64(r.at(off, 8), v) }

// DMA is memory devices reach by physical address: Alloc takes contiguous
// RAM from the kernel (reached through the direct map), and
// Phys translates any page of the program's memory, such as a page-sized
// Go heap buffer posted for zero-copy receive. Memory from Alloc is never
// freed: rings and headers live as long as their device.
type DMA struct {
	mu    sync.Mutex
	chunk []byte // the rest of the current 64 KiB chunk, for small allocations
}

// Fence makes the CPU's earlier stores to DMA memory visible to a device
// before its later loads from it (virtqueue.Fencer). A CPU's own full
// barrier does that, and then Fence does nothing; but QEMU's TCG before
// version 8.1 emits no host barrier for the guest's barriers when it runs
// one vCPU (QEMU commit c914d46d, "Do not elide memory barriers for
// !CF_PARALLEL in system mode"), and its device models run in other host
// threads. There a queue's published index could sit in the host's store
// buffer while the driver read the device's stale notification state,
// and both sides waited for each other for good: the TX queue of a
// virtio-net device stopped after some minutes of load. Under TCG, Fence
// writes to the POST diagnostic port (0x80, which ignores writes): TCG
// takes QEMU's global lock for port I/O, and that lock is a full barrier
// on the host.
func (d *DMA) Fence() {
	if underTCG {
		cpu.Out8(postPort, 0)
	}
}

// postPort is the PC's POST diagnostic port, which ignores writes.
const postPort = 0x80

// underTCG is true when the CPU is QEMU's TCG, by its hypervisor CPUID
// signature ("TCGTCGTCGTCG" at leaf 0x40000000, behind the hypervisor
// bit).
var underTCG = func() bool {
	if _, _, ecx, _ := cpu.CPUID(1, 0); ecx&(1<<31) == 0 {
		return false
	}
	_, b, c, d := cpu.CPUID(0x40000000, 0)
	return b == 0x54474354 && c == 0x43544743 && d == 0x47435447 // "TCGT" "CGTC" "GTCG"
}()

const dmaChunk = 64 << 10

// ErrNotContiguous reports a buffer Phys cannot translate to one physical
// range (it crosses a page boundary and was not allocated by Alloc).
var ErrNotContiguous = errors.New("machine: buffer crosses a page boundary")

// Alloc returns size zeroed bytes, physically contiguous, whose physical
// address is a multiple of align (a power of two).
func (d *DMA) Alloc(size, align int) ([]byte, uint64, error) {
	if size <= 0 || align <= 0 || align&(align-1) != 0 {
		return nil, 0, fmt.Errorf("machine: DMA alloc of %d bytes aligned to %d: bad arguments", size, align)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if size > dmaChunk/4 || align > 4096 {
		return allocFrames(size, align)
	}
	// Small allocations (queue rings, headers) share chunks.
	pad := int(-uintptr(unsafe.Pointer(unsafe.SliceData(d.chunk)))) & (align - 1)
	if len(d.chunk) < pad+size {
		b, _, err := allocFrames(dmaChunk, 4096)
		if err != nil {
			return nil, 0, err
		}
		d.chunk, pad = b, 0
	}
	b := d.chunk[pad : pad+size : pad+size]
	d.chunk = d.chunk[pad+size:]
	return b, uint64(uintptr(unsafe.Pointer(&b[0]))) - kernel.DirectMapBase, nil
}

func allocFrames(size, align int) ([]byte, uint64, error) {
	p, _, e := syscall.RawSyscall(kernel.SysAllocDMA, uintptr(size), uintptr(align), 0)
	if e != 0 {
		return nil, 0, fmt.Errorf("machine: DMA alloc of %d bytes: %w", size, e)
	}
	// The direct map's address of RAM no Go allocator owns; convert it
	// through memory so vet's check for Go heap addresses stays quiet.
	va := kernel.DirectMapBase + uint64(p)
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(&va))
	return unsafe.Slice((*byte)(ptr), size), uint64(p), nil
}

// Phys returns the physical address of b[0]. b must lie within one page
// unless it is DMA memory from Alloc.
func (d *DMA) Phys(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("machine: physical address of an empty buffer")
	}
	va := uintptr(unsafe.Pointer(&b[0]))
	if uint64(va) >= kernel.DirectMapBase {
		return uint64(va) - kernel.DirectMapBase, nil // Alloc's memory
	}
	if (va&4095)+uintptr(len(b)) > 4096 {
		return 0, ErrNotContiguous
	}
	if p, ok := walk(uint64(va)); ok {
		return p, nil
	}
	// Not mapped yet (a page never touched): the kernel backs it.
	p, _, e := syscall.RawSyscall(kernel.SysVirtToPhys, va, 0, 0)
	if e != 0 {
		return 0, fmt.Errorf("machine: physical address of %#x: %w", va, e)
	}
	return uint64(p), nil
}

// Page-table entry bits and layout (Intel SDM Vol. 3 §4.5).
const (
	ptePresent  = 1
	pteHuge     = 1 << 7
	pteAddrMask = 0x000f_ffff_ffff_f000
)

// walk translates va by reading the page tables directly: the program runs
// in ring 0, CR3 is readable, and every table is RAM reachable through the
// direct map. This keeps a system call off the RX refill and TX paths,
// which translate every page they post. It reports false for an address
// not mapped (yet).
func walk(va uint64) (uint64, bool) {
	table := cpu.ReadCR3() & pteAddrMask
	for level := 3; level >= 0; level-- {
		idx := (va >> (12 + 9*uint(level))) & 511
		e := cpu.MMIORead64(uintptr(kernel.DirectMapBase + table + idx*8))
		if e&ptePresent == 0 {
			return 0, false
		}
		if level == 0 || (level <= 2 && e&pteHuge != 0) {
			size := uint64(1) << (12 + 9*uint(level))
			return e&pteAddrMask&^(size-1) | va&(size-1), true
		}
		table = e & pteAddrMask
	}
	return 0, false
}
