package virtqueue

import (
	"errors"
	"fmt"
)

// Queue is the driver side of one virtqueue, whatever its ring format.
// Split (virtio 1.2 §2.7) and Packed (§2.8) implement it, so drivers code
// against Queue and never learn which format the device negotiated.
//
// A Queue is not safe for concurrent use: one goroutine (or a caller-held
// lock) owns it. The device is the only other party, and it is synchronized
// through the ring memory itself.
type Queue interface {
	// Size is the number of descriptors, and the bound (exclusive) of every
	// head id that Add returns (a buffer id for Packed, not a position).
	Size() int
	// Addresses returns the three physical addresses a transport hands to
	// the device (split: descriptor table, avail ring, used ring; packed:
	// descriptor ring, driver and device event suppression areas).
	Addresses() (desc, avail, used uint64)
	// Add posts one chain, not yet visible to the device; ErrFull is
	// backpressure.
	Add(bufs []Buffer) (head uint16, err error)
	// Kick publishes what Add posted and reports whether to notify.
	Kick() (notify bool)
	// Pop returns the next completed chain; ok=false when there is none.
	// Device violations come back as *DeviceError.
	Pop() (head uint16, written uint32, ok bool, err error)
	// DisableInterrupts and EnableInterrupts bracket a NAPI-style drain.
	DisableInterrupts()
	EnableInterrupts() (pending bool)
	// Free is the number of free descriptors; InFlight the number of chains
	// added and not yet returned.
	Free() int
	InFlight() int
	// DetachUnused takes back one in-flight chain once the device has been
	// reset and no longer owns the queue; ok=false when none is left.
	DetachUnused() (head uint16, ok bool)
	// Reset empties the rings (every chain must have been detached) so
	// that the queue can be set up again on the device after a reset, at
	// the same addresses.
	Reset() error
	// Stats returns the queue's counters.
	Stats() Stats
}

var _ Queue = (*Split)(nil)

// Stats counts what a queue did. Counters only grow; they are owned by the
// queue's goroutine (read them there, or under the caller's lock).
type Stats struct {
	Added         uint64 // chains accepted by Add
	AddedIndirect uint64 // of Added, chains posted through an indirect table
	Full          uint64 // Add calls refused with ErrFull (backpressure)
	Kicks         uint64 // Kick calls that published new avail entries
	Notifies      uint64 // Kick calls that asked the caller to notify the device
	Suppressed    uint64 // Kick calls that published but the device asked not to be notified
	Popped        uint64 // chains completed without error (ErrBadLength completions not included)
	Detached      uint64 // chains taken back by DetachUnused

	BadID       uint64 // used entries whose id is not below Size (ErrBadID)
	NotInFlight uint64 // used entries whose id is not the head of an in-flight chain (ErrNotInFlight)
	BadLength   uint64 // used entries whose len exceeds the writable bytes posted (ErrBadLength)
	BadUsedIdx  uint64 // used.idx moved by more than Size at once (ErrBadUsedIdx)
	BadWrap     uint64 // packed: used flags that do not match the wrap counter (ErrBadWrap)
}

// DeviceErrors is the number of device violations of every kind.
func (s Stats) DeviceErrors() uint64 {
	return s.BadID + s.NotInFlight + s.BadLength + s.BadUsedIdx + s.BadWrap
}

// ErrFull is returned by Add when there are not enough free descriptors for
// the chain. It is backpressure: nothing was posted, nothing is lost; retry
// after Pop has returned chains. (A device that completes chains before
// Kick published them can also make Add wait for the next Kick, so that
// the avail ring is never overrun.)
var ErrFull = errors.New("virtqueue: not enough free descriptors")

// Errors Add returns for a chain the caller built wrongly. They are caller
// bugs, not device faults; they come wrapped with the offending values.
var (
	ErrNoBuffers    = errors.New("virtqueue: empty chain")
	ErrChainTooLong = errors.New("virtqueue: chain longer than the queue")
	ErrZeroLength   = errors.New("virtqueue: zero-length buffer")
	ErrBufferOrder  = errors.New("virtqueue: readable buffer after a writable one")
)

// Sentinels for device violations, wrapped in a *DeviceError by Pop.
var (
	// ErrBadID: a used entry's id is not a descriptor index (>= Size).
	// Nothing was freed; the head Pop returns means nothing.
	ErrBadID = errors.New("id out of range")
	// ErrNotInFlight: a used entry's id is a descriptor index but not the
	// head of a chain the device owns (never posted, already completed,
	// or a non-head descriptor). Nothing was freed; the head means nothing.
	ErrNotInFlight = errors.New("id not in flight")
	// ErrBadLength: a used entry reports more bytes written than the chain
	// has writable bytes. The head is valid and its descriptors were
	// freed: the caller recycles its buffers and drops the data.
	ErrBadLength = errors.New("length exceeds the writable bytes posted")
	// ErrBadUsedIdx: used.idx moved by more than Size since the driver last
	// looked, which no valid device can do (at most Size chains are in
	// flight). The entries in between are skipped; their chains stay in
	// flight until DetachUnused after a device reset.
	ErrBadUsedIdx = errors.New("used index moved by more than the queue size")
	// ErrBadWrap (packed rings): the slot where the next used descriptor
	// is expected has AVAIL and USED flags that are neither what the
	// driver wrote nor a used descriptor of the current lap (a wrong
	// wrap counter, or AVAIL != USED written by the device). Nothing was
	// freed; the id means nothing.
	ErrBadWrap = errors.New("used descriptor flags do not match the wrap counter")
)

// DeviceError is a violation of the virtio specification by the device,
// found while reading the used ring. errors.Is matches it against ErrBadID,
// ErrNotInFlight, ErrBadLength, ErrBadUsedIdx and ErrBadWrap.
type DeviceError struct {
	Err     error  // the sentinel naming the violation
	Pos     uint16 // position of the offending entry: free-running used index (split), ring slot (packed)
	ID      uint32 // id the device wrote (ErrBadID, ErrNotInFlight, ErrBadLength)
	Len     uint32 // len the device wrote (ErrBadLength)
	Posted  uint32 // writable bytes posted for the chain, saturated at 2^32-1 (ErrBadLength)
	UsedIdx uint16 // used.idx as read from the device (ErrBadUsedIdx)
	Flags   uint16 // descriptor flags as read from the device (ErrBadWrap)
}

func (e *DeviceError) Error() string {
	switch {
	case errors.Is(e.Err, ErrBadLength):
		return fmt.Sprintf("virtqueue: device used entry %d: id %d len %d: %v (%d)", e.Pos, e.ID, e.Len, e.Err, e.Posted)
	case errors.Is(e.Err, ErrBadWrap):
		return fmt.Sprintf("virtqueue: device used slot %d: id %d flags %#04x: %v", e.Pos, e.ID, e.Flags, e.Err)
	case errors.Is(e.Err, ErrBadUsedIdx):
		return fmt.Sprintf("virtqueue: device moved used.idx from %d to %d: %v", e.Pos, e.UsedIdx, e.Err)
	default:
		return fmt.Sprintf("virtqueue: device used entry %d: id %d: %v", e.Pos, e.ID, e.Err)
	}
}

// Unwrap returns the sentinel, for errors.Is.
func (e *DeviceError) Unwrap() error { return e.Err }
