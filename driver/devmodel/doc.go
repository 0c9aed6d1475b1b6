// Package devmodel is a host-side model of a virtio-net device for tests. It
// plays the DEVICE side of the protocol, independently of the driver-side
// virtqueue package, so that the driver can be tested end to end with
// `go test` on a development machine and so that the two sides of the ring
// protocol check each other rather than sharing one set of mistakes.
//
// A Net implements virtio.Transport (legacy or modern per Config), owns the
// device side of the receive (0), transmit (1) and, with CTRL_VQ, control
// (2) virtqueues, split or, when RING_PACKED is offered and accepted,
// packed, and runs them in its own goroutine, woken by Notify. Its
// behaviour follows the OASIS virtio specification v1.2 (§2.7 split and
// §2.8 packed virtqueues, §5.1 network device) and, where the
// specification leaves room, what QEMU's hw/net/virtio-net.c does:
//
//   - Descriptor chains are validated as QEMU's virtqueue_pop does (head and
//     next in range, no loops, no zero-length buffers, readable before
//     writable, indirect tables only when negotiated, never nested, a
//     multiple of 16 bytes). A bad chain is a driver bug: the device marks
//     itself broken (DEVICE_NEEDS_RESET, config interrupt) and counts it.
//   - Receive with MRG_RXBUF spreads a packet over as many posted buffers as
//     needed, fills num_buffers in the first one and publishes all the used
//     entries at once; without it, one chain holds one packet and a chain too
//     small drops the packet and leaves the buffer posted (as QEMU does).
//   - Transmit parses the virtio_net_hdr (10 bytes, 12 with MRG_RXBUF or
//     VERSION_1), completes NEEDS_CSUM checksums and segments TCPv4/TCPv6 GSO
//     packets in software whenever the receiver cannot take them.
//   - EVENT_IDX: interrupts honour used_event, avail_event is published after
//     each drain; without it the flags are used.
//   - Packed rings (packed.go, written from the specification and not from
//     package virtqueue): chains are taken in ring order while their
//     AVAIL/USED flags match the wrap counter, every descriptor of a chain
//     must be marked available and carry the chain's buffer id (an id made
//     available again while the device holds it is a driver error), and
//     indirect tables are read to their length. Used descriptors go at the
//     device's used position, which moves by each chain's slot count; a
//     batch's first descriptor is written last; like QEMU, the WRITE flag
//     is never set in a used descriptor. Both event suppression areas are
//     honoured, in their EVENT_IDX (off_wrap) form too.
//   - With MTU negotiated, a non-GSO frame longer than the MTU plus an
//     Ethernet header and one VLAN tag is refused in both directions
//     (virtio 1.2 §5.1.6.2.1, §5.1.6.3.1).
//   - While the link is down (SetLink) frames are dropped both ways, as
//     QEMU does; with STATUS a change raises a configuration interrupt.
//
// Two Nets joined by Connect exchange frames back to back: the transmit queue
// of one feeds the receive queue of the other, with checksum and segmentation
// offloads resolved for what the receiving driver negotiated. The wire has
// backpressure, as QEMU's link between a NIC and its backend does: when the
// receiver's backlog (Config.RxBacklog) and a short wire queue are full, the
// sender leaves chains in its transmit ring until the receiver takes frames
// again (or drops them, counted, once the receiver has stalled for
// Config.WireStall), so a TCP transfer between two stacks does not lose
// frames to a momentarily slow receiver. Tests can also inject frames
// (Inject, InjectRaw), capture transmitted frames (Config.Capture), and make
// the device hostile (SetHostile) to fuzz the driver with arbitrary used ids,
// lengths, used.idx and num_buffers values.
//
// # Use
//
//	mem := &virtqueue.HeapDMA{AutoRegister: true}
//	a, _ := devmodel.New(devmodel.Config{Mem: mem, Features: devmodel.FeatureMrgRxbuf | devmodel.FeatureMAC, RxBacklog: 1024})
//	b, _ := devmodel.New(devmodel.Config{Mem: mem, Legacy: true})
//	devmodel.Connect(a, b)
//	defer a.Close()
//	defer b.Close()
//	// a and b are virtio.Transports: open the driver on each.
//
// A test that plays the device by hand, one queue at a time, uses Queue:
// the same ring code, split or packed, on its own (package virtqueue's
// tests and driver/virtionet's unit and fuzz tests do).
//
// Sync waits until the device has processed everything notified or injected
// before the call, which lets a test that plays the driver by hand check
// the used ring without sleeping. Stats returns the counters.
//
// # Negotiation
//
// A modern device refuses FEATURES_OK (the bit does not read back) when the
// driver accepted a bit that was not offered, did not accept VERSION_1, or
// accepted a feature without its prerequisite (virtio 1.2 §5.1.3.1); the
// refusal is counted in Stats.FeatureRejections. A legacy device has no
// FEATURES_OK: unoffered bits are masked off at DRIVER_OK, as QEMU does.
//
// # Not modelled
//
// Multiqueue (MQ is never offered), IN_ORDER, UDP fragmentation or
// segmentation in software (a UFO/USO packet reaches only a receiver that
// takes it whole), VLAN filtering (every tag passes), RSS and hash reports,
// and IPv6 extension headers in GSO packets.
//
// # Memory
//
// The device reaches driver memory by physical address through the Memory
// interface (virtqueue.HeapDMA satisfies it). Ring indices and event fields
// are accessed with 32-bit atomic operations on the aligned word that holds
// them, which is what makes the model clean under the race detector when the
// driver side does the same; the model therefore needs the avail and used
// rings (packed: the descriptor ring and both event suppression areas)
// 4-byte aligned in host memory and runs on little-endian hosts only. In
// a packed ring a descriptor's id and flags are read and written together
// as one 32-bit atomic word.
package devmodel
