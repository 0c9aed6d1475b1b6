package virtiommio

// Register offsets in the window (virtio 1.2 §4.2.2, table "MMIO Device
// Register Layout"; §4.2.4 for the legacy-only ones).
const (
	regMagic             = 0x000 // "virt", little-endian
	regVersion           = 0x004 // 1 legacy, 2 modern
	regDeviceID          = 0x008 // virtio device type; 0 is an empty slot
	regVendorID          = 0x00c
	regDeviceFeatures    = 0x010
	regDeviceFeaturesSel = 0x014
	regDriverFeatures    = 0x020
	regDriverFeaturesSel = 0x024
	regGuestPageSize     = 0x028 // legacy
	regQueueSel          = 0x030
	regQueueNumMax       = 0x034
	regQueueNum          = 0x038
	regQueueAlign        = 0x03c // legacy
	regQueuePFN          = 0x040 // legacy
	regQueueReady        = 0x044 // modern
	regQueueNotify       = 0x050
	regInterruptStatus   = 0x060
	regInterruptACK      = 0x064
	regStatus            = 0x070
	regQueueDescLow      = 0x080 // modern, as are the five below
	regQueueDescHigh     = 0x084
	regQueueDriverLow    = 0x090
	regQueueDriverHigh   = 0x094
	regQueueDeviceLow    = 0x0a0
	regQueueDeviceHigh   = 0x0a4
	regConfigGeneration  = 0x0fc // modern
	regConfig            = 0x100 // device-specific configuration
)

const (
	// magicValue is "virt" read as a little-endian 32-bit word.
	magicValue = 0x74726976
	// versionLegacy and versionModern are the layouts Version names.
	versionLegacy = 1
	versionModern = 2

	// maxQueueSize is the largest split ring (virtio 1.2 §2.7: 32768).
	maxQueueSize = 32768
	// maxQueues bounds the probe for queues (there is no count register):
	// QEMU's VIRTIO_QUEUE_MAX.
	maxQueues = 1024

	// legacyPageSize is the guest page size the legacy layout is told,
	// and its queue alignment: the contiguous layout virtio.Transport
	// asks legacy drivers for.
	legacyPageSize   = 4096
	legacyPFNShift   = 12
	legacyQueueAlign = 4096

	// minWindow is the smallest register window: the registers up to the
	// configuration.
	minWindow = regConfig
	// maxWindow bounds the window a command line may claim: 4 KiB holds
	// the registers and any device configuration there is.
	maxWindow = 4096
)
