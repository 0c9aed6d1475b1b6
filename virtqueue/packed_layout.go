package virtqueue

// Packed ring layout (virtio 1.2 §2.8): constants and the descriptor word
// helpers.
//
// A packed descriptor is addr u64, len u32, id u16, flags u16 (§2.8.13).
// The driver writes available descriptors into the ring and the device
// overwrites them with used descriptors, so id and flags, which lie in one
// aligned 32-bit word at offset 12, are what both sides synchronize on: the
// word is stored atomically (release) by the side handing the slot over and
// loaded atomically (acquire) by the other.

const (
	// MaxPackedSize is the largest packed queue (virtio 1.2 §2.8: Queue
	// Size up to 32768; it need not be a power of two).
	MaxPackedSize = 32768

	packedAvail = 1 << 7  // VIRTQ_DESC_F_AVAIL (§2.8.1)
	packedUsed  = 1 << 15 // VIRTQ_DESC_F_USED (§2.8.1)

	packedIDOff   = 12 // offset of the id/flags word in a descriptor
	packedLenOff  = 8  // offset of len
	eventAreaSize = 4  // struct pvirtq_event_suppress: off_wrap u16, flags u16 (§2.8.10)

	// Event suppression flags (§2.8.10).
	eventFlagEnable  = 0 // RING_EVENT_FLAGS_ENABLE: notify on every event
	eventFlagDisable = 1 // RING_EVENT_FLAGS_DISABLE: never notify
	eventFlagDesc    = 2 // RING_EVENT_FLAGS_DESC: notify at off_wrap (EVENT_IDX only)

	eventWrapBit = 1 << 15 // off_wrap: wrap counter in bit 15, offset in bits 0-14
)

// availFlags are the AVAIL/USED bits with which the driver makes a slot
// available when its avail wrap counter is wrap: AVAIL equal to the
// counter, USED its inverse (§2.8.1).
func availFlags(wrap bool) uint16 {
	if wrap {
		return packedAvail
	}
	return packedUsed
}

// usedFlags are the AVAIL/USED bits of a descriptor the device has used
// while its used wrap counter was wrap: both equal to the counter.
func usedFlags(wrap bool) uint16 {
	if wrap {
		return packedAvail | packedUsed
	}
	return 0
}

// PackedSizes returns how many bytes a device maps at each address a
// packed queue of size entries gives Transport.SetupQueue: the descriptor
// ring and the driver and device event suppression areas.
func PackedSizes(size int) (ring, driver, device int) {
	return descSize * size, eventAreaSize, eventAreaSize
}
