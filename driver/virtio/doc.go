// Package virtio holds what every virtio device driver shares, whatever the
// device type and the bus: the device status bits and the status handshake,
// the transport-independent feature bits and their negotiation, the
// Transport interface that a bus binding (virtio over PCI, virtio-mmio, or a
// device model in tests) implements, and SharedLine, which spreads one
// interrupt line over a device's queues and configuration for the
// transports whose devices share a line.
//
// References are to the OASIS virtio specification v1.2: §2.1 device status,
// §2.2 feature bits, §3.1 device initialization, §6 reserved feature bits.
package virtio
