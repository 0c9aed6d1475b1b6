package devmodel

// Memory is the driver's memory as the device sees it: physical addresses
// resolved to host bytes. virtqueue.HeapDMA satisfies it; so does any test
// arena.
type Memory interface {
	// Slice returns the n bytes at physical address phys. The range must be
	// contiguous in host memory; an error means the driver handed the device
	// an address it does not own.
	Slice(phys uint64, n int) ([]byte, error)
}
