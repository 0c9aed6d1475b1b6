package virtqueue

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// The 16-bit ring fields that both sides touch while the queue runs
// (avail.flags/idx, used.flags/idx, used_event, avail_event) are read and
// written through sync/atomic on the aligned 32-bit word that holds them:
// Go has no 16-bit atomics, and atomics are what give the release/acquire
// ordering the rings need (virtio 1.2 §2.7.13 "memory barriers"). Go's
// atomics are sequentially consistent, so an atomic store followed by an
// atomic load is also the full barrier the notification checks require.
//
// Every such word has one writer: the avail header and the used_event word
// are written by the driver only, the used header and the avail_event word
// by the device only. Replacing half a word is therefore a plain atomic
// load followed by an atomic store, never a lost update.

// ringWord is an aligned 32-bit word of ring memory holding two
// little-endian 16-bit fields: lo at the lower address, hi at the upper.
type ringWord struct {
	p *uint32 // the word, in DMA memory; 4-byte aligned
}

// wordAt returns the ring word at off in mem; off must be 4-aligned and the
// word inside mem, which NewSplit's layout guarantees.
func wordAt(mem []byte, off int) (ringWord, error) {
	if off%4 != 0 || off < 0 || off+4 > len(mem) {
		return ringWord{}, fmt.Errorf("virtqueue: ring word at %d outside %d bytes or misaligned", off, len(mem))
	}
	p := unsafe.Pointer(&mem[off])
	if uintptr(p)%4 != 0 {
		return ringWord{}, fmt.Errorf("virtqueue: ring memory at %p is not 4-byte aligned", p)
	}
	return ringWord{p: (*uint32)(p)}, nil
}

// load reads both fields with one atomic (acquire) load.
func (w ringWord) load() (lo, hi uint16) {
	v := toLE(atomic.LoadUint32(w.p))
	return uint16(v), uint16(v >> 16)
}

// store writes both fields with one atomic (release, and full barrier) store.
func (w ringWord) store(lo, hi uint16) {
	atomic.StoreUint32(w.p, toLE(uint32(lo)|uint32(hi)<<16))
}

// half is one 16-bit field of a ringWord.
type half struct {
	w  ringWord // the word holding the field
	hi bool     // the field is the upper half (higher address)
}

// halfAt returns the field at byte offset off (2-aligned) of mem.
func halfAt(mem []byte, off int) (half, error) {
	w, err := wordAt(mem, off&^3)
	return half{w: w, hi: off&2 != 0}, err
}

func (h half) load() uint16 {
	lo, hi := h.w.load()
	if h.hi {
		return hi
	}
	return lo
}

// store replaces the field, keeping the other half as it is; only the
// word's single writer may call it.
func (h half) store(v uint16) {
	lo, hi := h.w.load()
	if h.hi {
		hi = v
	} else {
		lo = v
	}
	h.w.store(lo, hi)
}

// load32 atomically reads the little-endian uint32 at off in mem (4-aligned,
// checked by the caller's layout). Used entries are read with it: on amd64
// it is a plain MOV, and it keeps a device that rewrites an entry while we
// read it from producing a torn value.
func load32(mem []byte, off int) uint32 {
	// Bounds checked by slicing, not by indexing: under the race
	// detector an index expression counts as a plain read, which would
	// race with the other side's atomic store to the same word.
	w := mem[off : off+4 : off+4]
	return toLE(atomic.LoadUint32((*uint32)(unsafe.Pointer(unsafe.SliceData(w)))))
}

// toLE converts between the host's byte order and little-endian (its own
// inverse).
func toLE(v uint32) uint32 {
	if hostLittleEndian {
		return v
	}
	return bits.ReverseBytes32(v)
}

// storeLE32 atomically writes v as the little-endian uint32 at off in mem
// (4-aligned, checked by the caller's layout): the release store that
// hands a packed ring slot over.
func storeLE32(mem []byte, off int, v uint32) {
	w := mem[off : off+4 : off+4] // bounds check without a read, see load32
	atomic.StoreUint32((*uint32)(unsafe.Pointer(unsafe.SliceData(w))), toLE(v))
}
