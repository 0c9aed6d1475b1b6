// Package virtqueue is the driver side of virtio virtqueues: the split ring
// of virtio 1.2 §2.7 now, the packed ring (§2.8) later behind the same
// Queue interface. It knows nothing of PCI or of networking: it lays out
// the rings in memory obtained through the DMA interface, posts chains of
// buffers, publishes them, decides whether the device needs a notification,
// and takes completed chains back, validating everything the device wrote.
//
// # Using a queue
//
//	q, err := virtqueue.NewSplit(mem, virtqueue.Options{Size: 256, EventIdx: true, Indirect: true})
//	desc, avail, used := q.Addresses()
//	transport.SetupQueue(0, q.Size(), desc, avail, used)
//
//	head, err := q.Add(bufs) // errors.Is(err, virtqueue.ErrFull): backpressure
//	state[head] = ...        // the caller's per-chain state, Size() entries
//	if q.Kick() {
//		transport.Notify(0)
//	}
//
//	// On an interrupt (NAPI style):
//	for {
//		q.DisableInterrupts()
//		for {
//			head, n, ok, err := q.Pop()
//			if !ok {
//				break
//			}
//			// err is a *DeviceError: counted in Stats; with ErrBadLength
//			// head is valid (recycle its buffers, drop the data),
//			// otherwise head means nothing.
//		}
//		if !q.EnableInterrupts() {
//			break // nothing arrived while re-arming
//		}
//	}
//
// # What is validated
//
// Split never trusts device-writable memory for its own bookkeeping: chain
// links, the free list and the writable byte count of each chain live in
// Go memory. From the used ring it reads used.idx, which may move by at
// most Size (ErrBadUsedIdx), and each entry's id, which must be the head of
// a chain in flight (ErrBadID, ErrNotInFlight), and len, which may not
// exceed that chain's writable bytes (ErrBadLength). Each violation is
// counted in Stats and returned as a *DeviceError; the entry is consumed,
// so a drain loop always ends, and no descriptor is ever lost: a chain the
// device never returns is taken back with DetachUnused after a reset.
//
// # Memory protocol, for device implementations
//
// The driver and the device share the rings without locks; the order of
// memory accesses is the protocol (§2.7.13). Go has no 16-bit atomics, so
// every 16-bit field that one side writes while the other reads is
// accessed through sync/atomic on the aligned 32-bit little-endian word
// that holds it. A device model running in another goroutine must do the
// same, or the race detector (and, on weakly ordered machines, the
// hardware) will disagree with it:
//
//   - avail ring offset 0: flags (low half) and idx (high half), written by
//     the driver with one atomic store (release). The device loads the
//     word atomically (acquire), then reads ring entries and descriptors
//     with plain loads.
//   - used ring offset 0: flags and idx, written by the device with one
//     atomic store after writing the used elements (release); the driver
//     loads it atomically (acquire), then reads elements with atomic 32-bit
//     loads.
//   - used_event (avail ring offset 4+2*Size) and avail_event (used ring
//     offset 4+8*Size): 16-bit fields in the 32-bit word at their offset
//     rounded down to 4; the writer (driver for used_event, device for
//     avail_event) stores the whole word atomically, the reader loads it
//     atomically. With Size 1 the used_event word also holds ring[0],
//     which the driver then writes through that word atomically, so a
//     device must read ring[0] through the word too.
//
// DeviceView implements the device's half of this protocol; a device
// model should use it rather than re-derive it. Both rings are allocated 2
// bytes longer than the spec's sizes so that these words lie inside them
// (SplitSizes gives the lengths to map). Go's atomics are sequentially consistent,
// which also provides the full barriers the notification checks need
// (publish avail.idx, then read avail_event; re-arm used_event, then read
// used.idx).
//
// # Host-side testing
//
// HeapDMA (memory.go) implements DMA over Go memory with synthetic
// physical addresses and resolves them back for a device model with
// HeapDMA.Slice. The tests of this package play the device by hand through
// it.
package virtqueue
