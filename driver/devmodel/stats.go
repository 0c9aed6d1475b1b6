package devmodel

// Stats are the device's counters. Every frame the device drops has a
// reason and a counter; every driver violation is counted and the last one
// kept.
type Stats struct {
	TxPackets       uint64 // chains consumed from the transmit queue
	TxFrames        uint64 // frames put on the wire (after segmentation)
	TxBytes         uint64 // bytes of those frames, without virtio headers
	Segmented       uint64 // GSO packets cut into segments in software (for Capture, or received from a peer)
	Checksummed     uint64 // NEEDS_CSUM checksums completed in software (likewise)
	TxHeaderErrors  uint64 // frames dropped: offload not negotiated or malformed
	TxDropLinkDown  uint64 // frames dropped because the link was down
	TxDropWireFull  uint64 // frames dropped: the connected peer took nothing for too long
	RxFrames        uint64 // frames written into receive buffers
	RxBytes         uint64 // bytes of those frames, without virtio headers
	RxBuffers       uint64 // used entries written on the receive queue
	RxDropNoBuffers uint64 // frames dropped: no receive buffer posted
	RxDropTooSmall  uint64 // frames dropped: the chain (no MRG_RXBUF) was too small
	RxDropBacklog   uint64 // injected frames dropped: the device's queue was full
	RxDropFiltered  uint64 // frames dropped by the MAC filter (not promiscuous)
	RxDropLinkDown  uint64 // frames dropped because the link was down
	RxDropOffload   uint64 // frames dropped: an offload the model cannot resolve
	RxDropNotReady  uint64 // frames dropped: the driver had not set DRIVER_OK
	RxDropTooBig    uint64 // frames dropped: over the negotiated MTU without GSO

	DriverErrors      uint64 // protocol violations that broke the device
	FeatureRejections uint64 // FEATURES_OK refused, or legacy features masked
	LastError         error  // the last violation or drop with an error

	Notifications        [3]uint64 // Notify calls per queue
	Interrupts           [3]uint64 // interrupts raised per queue
	InterruptsSuppressed [3]uint64 // used-ring updates for which the driver asked for no interrupt
	ConfigInterrupts     uint64    // configuration-change interrupts raised

	CtrlCommands uint64 // control commands processed
	CtrlErrors   uint64 // control commands answered VIRTIO_NET_ERR
}
