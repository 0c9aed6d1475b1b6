package virtionet

import "sync/atomic"

// Stats is a snapshot of the driver's counters. Every way a packet can be
// dropped has its own counter; the device's protocol violations are counted
// where they are found.
type Stats struct {
	RxPackets           uint64 // packets handed to netstack
	RxBytes             uint64 // bytes of those packets (Ethernet frame, no virtio header)
	RxGSOPackets        uint64 // of RxPackets, coalesced TSO packets delivered whole
	RxChecksumValidated uint64 // of RxPackets, marked checksum-validated from DATA_VALID/NEEDS_CSUM
	RxBuffersUsed       uint64 // used entries taken from the RX ring
	RxPagesUp           uint64 // pages handed to netstack as zero-copy fragments
	RxPagesAllocated    uint64 // fresh pages taken from the gVisor chunk pool to refill the ring
	RxPagesRecycled     uint64 // pages returned to the driver's spare list (data copied or dropped)

	RxDropShort         uint64 // first buffer shorter than the virtio header
	RxDropRunt          uint64 // frame shorter than an Ethernet header
	RxDropTooLong       uint64 // frame longer than any legal packet
	RxDropNumBuffers    uint64 // num_buffers 0 or larger than the buffers in flight
	RxDropTruncated     uint64 // fewer used buffers than num_buffers said
	RxDropBadLength     uint64 // Pop reported ErrBadLength (len beyond the posted buffer)
	RxDropDeviceError   uint64 // other used-ring violations (bad id, id not in flight, used.idx jump)
	RxDropNoDispatcher  uint64 // packet complete but no netstack dispatcher attached
	RxDropBadHeaderType uint64 // header with a GSO type this driver did not negotiate
	RxDropBadCsum       uint64 // NEEDS_CSUM with csum_start/csum_offset outside the frame
	RxRestSkipped       uint64 // buffers discarded as the rest of a packet already dropped (not a packet each)
	RxRefillErrors      uint64 // refill failures (address translation of a page failed)

	TxPackets         uint64 // packets posted to the TX ring
	TxBytes           uint64 // bytes of those packets (no virtio header)
	TxGSOPackets      uint64 // of TxPackets, TSO packets the device segments
	TxCsumOffload     uint64 // of TxPackets, packets with NEEDS_CSUM
	TxCompleted       uint64 // packets the device returned (and that were released)
	TxRingFull        uint64 // WritePackets calls that stopped early: ring full (backpressure)
	TxStalls          uint64 // waits for room that ended with nothing returned; writers then stop waiting until a completion
	TxDropTooManySegs uint64 // packets with more segments than a chain can hold, even bounced
	TxBounced         uint64 // packets whose views would not fit a chain, copied into a bounce buffer
	TxDropPhysError   uint64 // packets whose memory had no physical address
	TxDropFailed      uint64 // packets dropped because the device failed and could not be recovered
	TxBadLength       uint64 // completions with a nonzero written length (counted, released normally)
	TxDeviceErrors    uint64 // other used-ring violations on TX

	RxRingSize     uint64 // descriptors of the RX ring
	TxRingSize     uint64 // descriptors of the TX ring
	RxRingInFlight uint64 // RX buffers posted at the last poll
	TxRingInFlight uint64 // TX chains in flight at the last poll or write

	RxInterrupts      uint64 // RX interrupts handled
	TxInterrupts      uint64 // TX interrupts handled
	ConfigInterrupts  uint64 // configuration-change interrupts handled
	RxNotifies        uint64 // device notifications for the RX ring
	TxNotifies        uint64 // device notifications for the TX ring
	RxKicksSuppressed uint64 // RX publishes the device asked not to be notified of
	TxKicksSuppressed uint64 // TX publishes the device asked not to be notified of

	CtrlCommands uint64 // control-queue commands completed with VIRTIO_NET_OK
	CtrlErrors   uint64 // control-queue commands refused, timed out or malformed
	LinkChanges  uint64 // link state transitions seen in config status
	Announces    uint64 // announce requests acknowledged
	// ResetFailures counts device resets that did not complete: the
	// buffers posted to the device were then kept from netstack.
	ResetFailures uint64
	// NeedsReset counts configuration interrupts that found
	// DEVICE_NEEDS_RESET set: the device stopped on an error.
	NeedsReset uint64
	// Recoveries counts the device brought back after a reset (asked for
	// by NeedsReset or by a ring violation that lost buffers:
	// RxDropDeviceError, TxDeviceErrors, a broken control queue);
	// RecoveryFailures those that could not be (the device is then FAILED).
	Recoveries, RecoveryFailures uint64
}

// counters is the live, concurrently updated form of Stats: each field is
// the Stats field of the same name (capitalized). Writers are the RX loop,
// TX writers and loop, and the config loop; readers take snapshots.
type counters struct {
	rxPackets, rxBytes, rxGSOPackets, rxChecksumValidated, rxBuffersUsed atomic.Uint64 // RX deliveries
	rxPagesUp, rxPagesAllocated, rxPagesRecycled                         atomic.Uint64 // RX page ownership
	rxDropShort, rxDropRunt, rxDropTooLong, rxDropNumBuffers             atomic.Uint64 // RX drops
	rxDropTruncated, rxDropBadLength, rxDropDeviceError                  atomic.Uint64 // RX drops
	rxDropNoDispatcher, rxDropBadHeaderType, rxRefillErrors              atomic.Uint64 // RX drops and refill
	rxRestSkipped, rxDropBadCsum                                         atomic.Uint64 // RX buffers of dropped packets; bad checksum offsets
	txPackets, txBytes, txGSOPackets, txCsumOffload, txCompleted         atomic.Uint64 // TX traffic
	txRingFull, txDropTooManySegs, txDropPhysError                       atomic.Uint64 // TX backpressure and drops
	txBadLength, txDeviceErrors                                          atomic.Uint64 // TX device violations
	txBounced, txDropFailed, txStalls                                    atomic.Uint64 // TX packets bounced; dropped on a failed device; stalls
	rxRingSize, txRingSize, rxRingInFlight, txRingInFlight               atomic.Uint64 // ring occupancy
	rxInterrupts, txInterrupts, configInterrupts, rxNotifies, txNotifies atomic.Uint64 // interrupts and notifications
	rxKicksSuppressed, txKicksSuppressed                                 atomic.Uint64 // notifications suppressed
	ctrlCommands, ctrlErrors, linkChanges, announces                     atomic.Uint64 // control queue and config
	resetFailures, needsReset, recoveries, recoveryFailures              atomic.Uint64 // device resets and recovery
}

func (c *counters) snapshot() Stats {
	return Stats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(), RxGSOPackets: c.rxGSOPackets.Load(),
		RxChecksumValidated: c.rxChecksumValidated.Load(), RxBuffersUsed: c.rxBuffersUsed.Load(),
		RxPagesUp: c.rxPagesUp.Load(), RxPagesAllocated: c.rxPagesAllocated.Load(), RxPagesRecycled: c.rxPagesRecycled.Load(),
		RxDropShort: c.rxDropShort.Load(), RxDropRunt: c.rxDropRunt.Load(), RxDropTooLong: c.rxDropTooLong.Load(),
		RxDropNumBuffers: c.rxDropNumBuffers.Load(), RxDropTruncated: c.rxDropTruncated.Load(),
		RxDropBadLength: c.rxDropBadLength.Load(), RxDropDeviceError: c.rxDropDeviceError.Load(),
		RxDropNoDispatcher: c.rxDropNoDispatcher.Load(), RxDropBadHeaderType: c.rxDropBadHeaderType.Load(),
		RxRefillErrors: c.rxRefillErrors.Load(), RxRestSkipped: c.rxRestSkipped.Load(), RxDropBadCsum: c.rxDropBadCsum.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(), TxGSOPackets: c.txGSOPackets.Load(),
		TxCsumOffload: c.txCsumOffload.Load(), TxCompleted: c.txCompleted.Load(), TxRingFull: c.txRingFull.Load(),
		TxDropTooManySegs: c.txDropTooManySegs.Load(), TxDropPhysError: c.txDropPhysError.Load(),
		TxBadLength: c.txBadLength.Load(), TxDeviceErrors: c.txDeviceErrors.Load(), TxBounced: c.txBounced.Load(), TxDropFailed: c.txDropFailed.Load(), TxStalls: c.txStalls.Load(),
		RxRingSize: c.rxRingSize.Load(), TxRingSize: c.txRingSize.Load(),
		RxRingInFlight: c.rxRingInFlight.Load(), TxRingInFlight: c.txRingInFlight.Load(),
		RxInterrupts: c.rxInterrupts.Load(), TxInterrupts: c.txInterrupts.Load(), ConfigInterrupts: c.configInterrupts.Load(),
		RxNotifies: c.rxNotifies.Load(), TxNotifies: c.txNotifies.Load(),
		RxKicksSuppressed: c.rxKicksSuppressed.Load(), TxKicksSuppressed: c.txKicksSuppressed.Load(),
		CtrlCommands: c.ctrlCommands.Load(), CtrlErrors: c.ctrlErrors.Load(),
		LinkChanges: c.linkChanges.Load(), Announces: c.announces.Load(), ResetFailures: c.resetFailures.Load(),
		NeedsReset: c.needsReset.Load(), Recoveries: c.recoveries.Load(), RecoveryFailures: c.recoveryFailures.Load(),
	}
}

// RxDrops is the sum of every RX drop counter.
func (s Stats) RxDrops() uint64 {
	return s.RxDropShort + s.RxDropRunt + s.RxDropTooLong + s.RxDropNumBuffers + s.RxDropTruncated +
		s.RxDropBadLength + s.RxDropDeviceError + s.RxDropNoDispatcher + s.RxDropBadHeaderType + s.RxDropBadCsum
}

// TxDrops is the sum of every TX drop counter.
func (s Stats) TxDrops() uint64 {
	return s.TxDropTooManySegs + s.TxDropPhysError + s.TxDropFailed
}
