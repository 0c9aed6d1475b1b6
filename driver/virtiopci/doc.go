// Package virtiopci is the virtio transport over PCI (virtio 1.2 §4.1): it
// finds virtio functions among enumerated PCI devices and implements
// virtio.Transport for them, over either register layout:
//
//   - legacy (device IDs 0x1000..0x103F, device type in the subsystem ID):
//     one I/O BAR 0 holding feature, queue, status and ISR registers, the
//     MSI-X vector registers only while MSI-X is enabled, then the device
//     configuration (at 20, or 24 with MSI-X on) (§4.1.4.8);
//   - modern (device ID 0x1040 + type, and transitional devices that also
//     carry the capabilities): vendor-specific capabilities locating the
//     common configuration, notification, ISR and device configuration
//     structures in memory (or I/O) BARs (§4.1.4), 64-bit features through
//     select windows, queue_enable, config_generation.
//
// Interrupts use MSI-X when the function has it and the platform can
// allocate vectors (one vector for configuration changes, one per queue),
// and INTx otherwise, in which case every Interrupt reads the ISR register
// to acknowledge the device and tells queue from configuration interrupts.
//
// The package reaches the machine only through the pci package's PortIO and
// Mapper and through the two platform interfaces declared here,
// MSIAllocator and LineInterrupter, which the runtime implements.
//
// Order of use, for a driver: Probe, Open, virtio.Negotiate, Interrupts
// (vectors must be in place before a modern queue is enabled), SetupQueue
// for each queue, virtio.DriverOK. A reset (a new Negotiate) keeps the
// Interrupts valid: the transport writes the vectors again as queues are
// set up.
//
// Notifications write the queue index only: a driver must not accept
// VIRTIO_F_NOTIFICATION_DATA. Everything read from the device (capability
// offsets and lengths, queue sizes, notify offsets, vector read-backs,
// configuration generations) is checked; a violation is an error or a
// counter in Stats, never a panic or an access outside a mapped region.
package virtiopci
