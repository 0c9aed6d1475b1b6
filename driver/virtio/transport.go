package virtio

import "context"

// Device status bits (virtio 1.2 §2.1).
const (
	StatusAcknowledge uint8 = 1   // the guest found the device
	StatusDriver      uint8 = 2   // the guest knows how to drive it
	StatusDriverOK    uint8 = 4   // the driver is ready
	StatusFeaturesOK  uint8 = 8   // feature negotiation is complete (not legacy)
	StatusNeedsReset  uint8 = 64  // the device hit an error it cannot recover from
	StatusFailed      uint8 = 128 // the guest gave up on the device
)

// Transport-independent feature bits (virtio 1.2 §6). Device-specific bits
// live with their driver.
const (
	FeatureNotifyOnEmpty  uint64 = 1 << 24 // legacy only
	FeatureAnyLayout      uint64 = 1 << 27 // legacy only; implied by Version1
	FeatureIndirectDesc   uint64 = 1 << 28
	FeatureEventIdx       uint64 = 1 << 29
	FeatureVersion1       uint64 = 1 << 32
	FeatureAccessPlatform uint64 = 1 << 33
	FeatureRingPacked     uint64 = 1 << 34
	FeatureInOrder        uint64 = 1 << 35
	FeatureOrderPlatform  uint64 = 1 << 36
	FeatureSRIOV          uint64 = 1 << 37
	FeatureNotifData      uint64 = 1 << 38
	FeatureRingReset      uint64 = 1 << 40
)

// Transport is how a virtio driver reaches its device, whatever the bus:
// virtio over PCI (legacy I/O BAR or modern capabilities) on a machine, or a
// device model in tests. Methods do not fail for a transport that is up; a
// transport that loses its device reports it through Status.
type Transport interface {
	// Legacy reports a legacy (pre-1.0) interface: 32 feature bits, no
	// FEATURES_OK step, and one contiguous queue area whose size is fixed
	// by the device (virtio 1.2 §2.7.2, "Legacy Interfaces").
	Legacy() bool

	// DeviceFeatures returns every feature bit the device offers.
	DeviceFeatures() uint64
	// SetDriverFeatures writes the features the driver accepts.
	SetDriverFeatures(f uint64)

	// Status reads the device status; SetStatus writes it.
	Status() uint8
	SetStatus(s uint8)
	// Reset writes status 0 and returns once the device reads back 0.
	Reset() error

	// ReadConfig copies the device-specific configuration at off into b,
	// retrying until the configuration generation is stable.
	ReadConfig(off int, b []byte)
	// WriteConfig writes b at off in the device-specific configuration.
	WriteConfig(off int, b []byte)

	// NumQueues is how many virtqueues the transport can address.
	NumQueues() int
	// QueueMaxSize is the largest size queue q accepts; 0 means the queue
	// does not exist. On a legacy transport it is the only size.
	QueueMaxSize(q int) int
	// SetupQueue tells the device where queue q lives and enables it.
	// A legacy transport requires the contiguous layout (desc at a
	// 4096-aligned address, avail after it, used at the next 4096 boundary)
	// and size == QueueMaxSize(q).
	SetupQueue(q int, size int, desc, avail, used uint64) error
	// Notify tells the device that queue q has new available buffers.
	Notify(q int)

	// Interrupts returns one Interrupt per queue (0..n-1) and one for
	// configuration changes. Several may share one line (INTx): a driver
	// must poll every queue it owns when one of them fires. A driver calls
	// it before SetupQueue: on PCI a queue's MSI-X vector must be in place
	// before the queue is enabled (virtio 1.2 §4.1.4.3.2).
	Interrupts(n int) (queues []Interrupt, config Interrupt, err error)
}

// Interrupt is a device interrupt that a goroutine can wait for without
// busy polling and without holding an OS thread.
type Interrupt interface {
	// Wait returns once the interrupt has fired since the previous Wait
	// returned (an interrupt that fired while nobody waited is not lost), or
	// with ctx's error when ctx is done.
	Wait(ctx context.Context) error
}
