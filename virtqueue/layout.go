package virtqueue

// Split ring layout (virtio 1.2 §2.7): constants and byte offsets.

const (
	// MaxSize is the largest split queue (virtio 1.2 §2.7: Queue Size is
	// at most 32768).
	MaxSize = 32768

	descSize = 16 // bytes per descriptor: addr u64, len u32, flags u16, next u16 (§2.7.5)

	descFNext     = 1 // VIRTQ_DESC_F_NEXT: the chain continues at next
	descFWrite    = 2 // VIRTQ_DESC_F_WRITE: device-writable buffer
	descFIndirect = 4 // VIRTQ_DESC_F_INDIRECT: addr/len is a table of descriptors

	availFNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.6), only without EVENT_IDX
	usedFNoNotify     = 1 // VIRTQ_USED_F_NO_NOTIFY (§2.7.8), only without EVENT_IDX

	usedElemSize = 8 // bytes per used element: id u32, len u32 (§2.7.8)

	legacyAlign = 4096 // legacy layout: used ring at the next 4096 boundary (§2.7.2 legacy interfaces)
)

// splitLayout is where each part of a split ring of n entries lives.
//
// The avail ring is flags u16, idx u16, ring[n] u16, used_event u16; the
// used ring is flags u16, idx u16, ring[n] {id u32, len u32}, avail_event
// u16. The sizes below add 2 bytes to each ring so that the 32-bit word
// holding used_event (n >= 2) and avail_event lies inside the allocation:
// both are accessed with 32-bit atomics (see ring_unsafe.go).
type splitLayout struct {
	descBytes  int // descriptor table: 16 * n
	availBytes int // avail ring as allocated: 8 + 2n
	usedBytes  int // used ring as allocated: 8 + 8n

	usedEventOff  int // offset of used_event in the avail ring: 4 + 2n
	availEventOff int // offset of avail_event in the used ring: 4 + 8n

	// Legacy contiguous layout, one allocation: desc at 0, avail right
	// after it, used at the next 4096 boundary.
	legacyAvailOff int // 16n
	legacyUsedOff  int // alignUp(16n + 6 + 2n, 4096)
	legacyBytes    int // legacyUsedOff + usedBytes
}

func layoutFor(n int) splitLayout {
	l := splitLayout{
		descBytes:     descSize * n,
		availBytes:    8 + 2*n,
		usedBytes:     8 + usedElemSize*n,
		usedEventOff:  4 + 2*n,
		availEventOff: 4 + usedElemSize*n,
	}
	l.legacyAvailOff = l.descBytes
	// 6+2n is the avail ring's size in the spec; for a power-of-two n the
	// used_event word's spare half (bytes 6+2n..8+2n) never reaches the
	// boundary, since 18n+6 is not a multiple of 4 for even n.
	l.legacyUsedOff = alignUp(l.legacyAvailOff+6+2*n, legacyAlign)
	l.legacyBytes = l.legacyUsedOff + l.usedBytes
	return l
}

func alignUp(v, a int) int { return (v + a - 1) &^ (a - 1) }

// needEvent is vring_need_event (virtio 1.2 §2.7.10): with EVENT_IDX, the
// other side asked to be told once its index passes event; the index
// moved from old to new. All arithmetic is modulo 2^16, so it holds across
// wrap-around: the event lies in [old, new) exactly when new-event-1 is
// below new-old.
func needEvent(event, new, old uint16) bool {
	return new-event-1 < new-old
}
