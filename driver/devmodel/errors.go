package devmodel

import (
	"errors"
	"fmt"
)

// Ways a driver can violate the ring protocol (virtio 1.2 §2.7), as QEMU's
// virtqueue_pop checks them. Each is wrapped in a *DriverError that says
// which queue and chain.
var (
	ErrAvailIdx         = errors.New("avail.idx moved more than the queue size ahead")
	ErrHeadRange        = errors.New("chain head out of range")
	ErrNextRange        = errors.New("descriptor next out of range")
	ErrLoop             = errors.New("descriptor chain loops or is longer than the table")
	ErrZeroLength       = errors.New("zero-length descriptor")
	ErrOrder            = errors.New("device-readable descriptor after a device-writable one")
	ErrBadAddress       = errors.New("descriptor address outside driver memory")
	ErrIndirectFeature  = errors.New("indirect descriptor without VIRTIO_F_INDIRECT_DESC")
	ErrIndirectNested   = errors.New("indirect descriptor inside an indirect table")
	ErrIndirectSize     = errors.New("indirect table length not a non-zero multiple of 16")
	ErrIndirectNext     = errors.New("descriptor with both INDIRECT and NEXT")
	ErrChainTooLong     = errors.New("chain longer than 4 GiB")
	ErrQueueLayout      = errors.New("queue layout invalid")
	ErrNoBuffers        = errors.New("chain has no buffer of the required direction")
	ErrHeaderTooShort   = errors.New("buffer shorter than the virtio_net_hdr")
	ErrFeatureViolation = errors.New("offload used that was not negotiated")
	ErrCtrlHeader       = errors.New("control command without class, command or ack byte")
	ErrBroken           = errors.New("device broken on purpose (Net.Break)")
)

// DriverError is a protocol violation by the driver on one queue: the device
// counts it, marks itself DEVICE_NEEDS_RESET (when it cannot go on) and keeps
// it as Stats.LastError.
type DriverError struct {
	Queue int    // the virtqueue index
	Head  int    // the chain head, or -1 when not known
	Err   error  // one of the Err sentinels
	What  string // details for the reader
}

// Error implements error.
func (e *DriverError) Error() string {
	s := "devmodel: device status"
	if e.Queue >= 0 {
		s = fmt.Sprintf("devmodel: queue %d", e.Queue)
	}
	if e.Head >= 0 {
		s += fmt.Sprintf(" chain %d", e.Head)
	}
	s += ": " + e.Err.Error()
	if e.What != "" {
		s += " (" + e.What + ")"
	}
	return s
}

// Unwrap lets errors.Is find the sentinel.
func (e *DriverError) Unwrap() error { return e.Err }
