// Package virtionet is the guest-side virtio-net driver: feature negotiation,
// the receive path with mergeable page-sized buffers (MRG_RXBUF) handed up to
// gVisor's netstack without copying, the transmit path that posts a packet's
// own memory as descriptors, the control queue, and a gVisor
// stack.LinkEndpoint on top.
//
// The driver reaches the machine only through virtio.Transport (register
// access, queue set-up, interrupts) and virtqueue.DMA (memory with physical
// addresses), so the same code runs on bare metal and against a device model
// in tests.
//
// # Ownership of receive pages
//
// Every receive buffer is a 4096-byte gVisor buffer chunk (a page-aligned Go
// heap object, so one physical page) held through a *buffer.View. While the
// page is posted, the driver owns the view and nothing else references the
// chunk. When a packet arrives, the first bytes are copied into a small head
// view and the rest of each page is merged into the packet's buffer.Buffer
// as the view itself: ownership of the view passes to netstack, the ring slot
// is refilled with a fresh page, and the chunk goes back to gVisor's chunk
// pool only when netstack releases the packet. A page is never posted twice:
// a view is posted only right after it was allocated or after the device
// returned it and nothing was handed up from it.
//
// # Receive layouts
//
// With MRG_RXBUF every RX descriptor is one page; a packet spans
// num_buffers of them, its first 128 bytes are copied into a small head
// view and the rest of each page is attached without copying. Without it,
// each buffer is a chain of pages big enough for any packet: 65562 bytes
// with GUEST_TSO4/6, header + Ethernet + VLAN + MTU otherwise. A 256-entry
// ring then holds 256 MTU packets with MRG_RXBUF but only 15 packets of any
// size with big buffers (17 descriptors each), or 256 packets pinning 17 MiB
// with INDIRECT_DESC (BenchmarkRxRingCapacity).
//
// # Transmit
//
// Each packet is one chain: a virtio header from a per-ring slot array in
// DMA memory (followed in the same slot by a copy of the packet's protocol
// headers when VERSION_1 or ANY_LAYOUT allows), then the packet's own
// views, split where Go heap pages end; the payload is not copied, except
// when those views would make a chain longer than the queue takes (a TSO
// segment built from many small writes): such a packet is copied into one
// of a few bounce buffers and goes out as two descriptors. On a small queue
// GSOMaxSize is capped so that a segment's pages fit one chain.
// The driver holds a reference to the packet until the device returns the
// chain. A full ring makes WritePackets wait briefly for completions and
// then return fewer packets (or ErrWouldBlock): netstack's queueing
// disciplines drop what a link refuses, so returning at once would turn a
// momentarily full ring into TCP retransmission timeouts. A device that
// returns nothing during a whole wait has stalled (TxStalls): later writes
// do not wait until it returns a chain, so a stalled device costs netstack
// one wait (50 ms) and then drops, not 50 ms per write (300 writes to a
// stalled device model took 8.6 s before that rule, 50 ms with it). A
// modern device that stopped on an error says so and is recovered (see
// below); a stalled legacy one is not reset, as Linux does not.
//
// # Device errors and recovery
//
// A device that stops on an error sets DEVICE_NEEDS_RESET and raises a
// configuration interrupt (virtio 1.2 §2.1.2); a device that breaks the
// used ring (an id out of range or not in flight, used.idx jumping) strands
// the buffers behind the bad entries. Either way recover.go resets the
// device, takes every buffer back, negotiates the same features, sets the
// same queues up and refills, under the same link endpoint, so netstack's
// connections carry on (TCP retransmits what the rings lost). Recoveries in
// quick succession are spaced by a doubling wait; a device that cannot be
// reset, or comes back with other features, is marked FAILED and the
// driver drops what it is given (TxDropFailed). A legacy interface has no
// DEVICE_NEEDS_RESET: QEMU's legacy device stops silently, and only ring
// violations the driver sees start a recovery there.
//
// # Offloads
//
// TX: with CSUM and HOST_TSO4 and HOST_TSO6 the endpoint reports
// stack.HostGSOSupported; netstack then builds TCP segments up to 64 KiB
// with a partial checksum, which become NEEDS_CSUM and GSO_TCPV4/6 headers.
// RX: DATA_VALID or NEEDS_CSUM (with GUEST_CSUM) marks the packet's
// checksum as validated; coalesced GUEST_TSO packets are delivered whole.
//
// # Tests
//
// Unit tests and the fuzz targets (FuzzRxReassembly, FuzzTxCompletions;
// seed corpora in testdata/fuzz) run the RX and TX rings on an in-memory
// fake queue that lets a test play a hostile device. End-to-end tests run
// two gVisor stacks over two devmodel devices wired back to back through
// this driver in 32 feature combinations (legacy/modern x MRG_RXBUF x
// offloads x EVENT_IDX x INDIRECT_DESC): an HTTP GET and a TCP transfer
// each way checked with SHA-256, 64 MiB with offloads and 16 MiB without;
// plus a transfer during which the device lies about num_buffers and used
// lengths. `go test` takes 15-25 s on two shared cores, `go test -short`
// (256 KiB transfers) about 2 s.
//
// References are to the OASIS virtio specification v1.2, §5.1 (network
// device).
package virtionet
