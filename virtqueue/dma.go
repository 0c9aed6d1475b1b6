package virtqueue

// DMA is memory the device can reach by physical address.
//
// On bare metal the runtime implements it over identity-mapped physical
// memory; host-side tests use HeapDMA (memory.go), which gives Go memory
// synthetic physical addresses that a device model resolves back with
// HeapDMA.Slice.
type DMA interface {
	// Alloc returns zeroed, physically contiguous memory of size bytes whose
	// physical address is aligned to align; it is never moved or reclaimed.
	Alloc(size, align int) (buf []byte, phys uint64, err error)
	// Phys returns the physical address of b[0]. b must not cross a 4096-byte
	// page boundary unless it came from Alloc (Go heap pages are only
	// virtually contiguous); it is used to post page-sized Go heap buffers
	// (for zero-copy RX into gVisor buffers) and TX payload views.
	Phys(b []byte) (uint64, error)
}

// Fencer is implemented by DMA memory whose device does not observe the
// CPU's own barriers. The queues call Fence between publishing something
// (an avail index, re-armed interrupts) and reading what the device
// publishes in return (its notification suppression, its used index):
// the two sides of a handshake that each store, then load what the other
// stored, and need a full barrier between (virtio 1.2 §2.7.13.4, §2.7.10,
// §2.8.21.3.1). Without one, each side can miss the other's store and a
// notification or an interrupt is lost for good. Memory without the
// method gets none: the queues' sequentially consistent stores are that
// barrier on real CPUs.
type Fencer interface {
	Fence()
}

// fenceOf returns mem's Fence, or nil.
func fenceOf(mem DMA) func() {
	if f, ok := mem.(Fencer); ok {
		return f.Fence
	}
	return nil
}

// Buffer is one element of a chain posted with Add: a physically contiguous
// range the device reads or writes.
type Buffer struct {
	Addr     uint64 // physical address
	Len      uint32 // length in bytes; never 0 (QEMU rejects zero-sized buffers)
	Writable bool   // device writes it (VIRTQ_DESC_F_WRITE); all readable buffers come before writable ones
}

// Options configures a queue at creation; the feature-dependent fields must
// match what was negotiated with the device.
type Options struct {
	Size     int  // number of descriptors: a power of two, 1..32768
	Legacy   bool // legacy contiguous layout: desc table at 4096-aligned phys, avail right after, used at next 4096 boundary; one Alloc
	EventIdx bool // VIRTIO_F_EVENT_IDX negotiated: use used_event/avail_event instead of flags
	Indirect bool // VIRTIO_F_INDIRECT_DESC negotiated: chains of >1 buffer may go through an indirect table

	// IndirectMax is the number of entries of each indirect table (one
	// table per descriptor, allocated once by NewSplit). Chains longer than
	// it use direct descriptors. 0 picks DefaultIndirectMax(Size). Ignored
	// unless Indirect is set.
	IndirectMax int
}

// DefaultIndirectMax is the indirect table length NewSplit uses when
// Options.IndirectMax is 0: 32 entries (a TCP segment of 64 KiB split at
// page boundaries plus its header fits), fewer for very large queues so
// that the table pool stays within 4 MiB, and never more than the queue
// size (virtio 1.2 §2.7.5.3.1: a chain is never longer than the queue).
func DefaultIndirectMax(size int) int {
	const poolBudget = 4 << 20 // bytes of indirect tables at most
	m := 32
	if lim := poolBudget / (descSize * max(size, 1)); m > lim {
		m = lim
	}
	if m > size {
		m = size
	}
	return max(m, 1)
}
