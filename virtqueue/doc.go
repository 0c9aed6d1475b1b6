// Package virtqueue is the driver side of virtio virtqueues: the split ring
// of virtio 1.2 §2.7 (Split) and the packed ring of §2.8 (Packed), behind
// one Queue interface, so that a driver never learns which format the
// device negotiated. It knows nothing of PCI or of networking: it lays out
// the rings in memory obtained through the DMA interface, posts chains of
// buffers, publishes them, decides whether the device needs a notification,
// and takes completed chains back, validating everything the device wrote.
//
// # Using a queue
//
//	q, err := virtqueue.NewSplit(mem, virtqueue.Options{Size: 256, EventIdx: true, Indirect: true})
//	// or virtqueue.NewPacked(mem, ...) when VIRTIO_F_RING_PACKED was negotiated
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
// The device's half of this protocol is implemented once, independently
// of this package, by driver/devmodel (devmodel.Queue for tests that play
// the device by hand, this package's own included). Both rings are
// allocated 2 bytes longer than the spec's sizes so that these words lie
// inside them. Go's atomics are sequentially consistent,
// which also provides the full barriers the notification checks need
// (publish avail.idx, then read avail_event; re-arm used_event, then read
// used.idx).
//
// # Packed rings
//
// Packed has one descriptor ring, written by both sides, and two 4-byte
// event suppression areas (the driver's and the device's); Addresses
// returns them in the order queue_desc, queue_driver, queue_device take
// them. What differs from Split:
//
//   - Buffer ids are not ring positions: Add takes one from a free-id
//     list (ids 0..Size-1, so callers index per-chain state the same way
//     for both formats) and writes it into every descriptor of the chain;
//     the slots a chain takes, and its writable bytes, are kept by id in
//     Go memory. A used descriptor is found at the driver's used position,
//     which then moves by the slot count of the chain its id names.
//   - Wrap counters: both start at 1 and flip at each lap. A slot is
//     available when AVAIL equals the avail wrap counter and USED differs,
//     used when both equal the used wrap counter. Anything else at the
//     used position once the driver has published it is ErrBadWrap.
//   - Publication: Add writes everything except the flags of the first
//     chain's head since the last Kick; Kick stores that word last (after
//     the rest, with a release store), which makes the whole batch
//     available at once (§2.8.21.1).
//   - Event suppression: DisableInterrupts writes RING_EVENT_FLAGS_DISABLE;
//     EnableInterrupts writes ENABLE, or with EVENT_IDX DESC and the used
//     position with its wrap counter (off_wrap), kept current by every Pop;
//     Kick reads the device's area and, for DESC, notifies when the slots
//     just published include the one it names.
//   - Validation, the same contract as Split's: ErrBadID, ErrNotInFlight
//     (ids reused, never posted or not yet published by Kick), ErrBadLength
//     (len is checked whether or not the device set VIRTQ_DESC_F_WRITE:
//     QEMU never sets it), ErrBadWrap. An entry in error is consumed as one
//     slot, never past the slots the driver published, so a drain always
//     ends; the chains a lying device desynchronized stay in flight until
//     DetachUnused after a reset, as with Split's ErrBadUsedIdx.
//
// The packed memory protocol for devices: a descriptor's id (offset 12)
// and flags (offset 14) form one aligned 32-bit word; the side handing a
// slot over writes addr and len first and that word last with one atomic
// store, the other side loads the word atomically before reading the
// rest. Each event suppression area is one 32-bit word (off_wrap low,
// flags high) with one writer. PackedSizes gives the lengths to map.
//
// # Host-side testing
//
// HeapDMA (memory.go) implements DMA over Go memory with synthetic
// physical addresses and resolves them back for a device model with
// HeapDMA.Slice. The tests of this package play the device by hand
// through it with driver/devmodel's device side of the ring.
package virtqueue
