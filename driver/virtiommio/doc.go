// Package virtiommio is the virtio transport over memory-mapped registers
// (virtio 1.2 §4.2): the one Firecracker and QEMU's microvm machine give
// their devices, which sit on no bus. It implements virtio.Transport, so a
// driver such as virtionet runs over it as over virtiopci.
//
// # Finding devices
//
// Nothing can be enumerated: the VMM says where each device is, in one of
// two ways. QEMU's microvm with acpi=off and Firecracker append one word
// per device to the kernel command line, in the format Linux's virtio_mmio
// driver reads:
//
//	virtio_mmio.device=SIZE@BASE:IRQ[:ID]
//
// SIZE takes K, M or G suffixes, BASE is hexadecimal with 0x or decimal,
// IRQ is the I/O APIC input (GSI). ParseDevice and DevicesFromArgs read
// them. QEMU's microvm with ACPI on (its default) appends nothing and
// declares each transport in its DSDT instead, as a Device with _HID
// ACPIHardwareID, a memory window and a level-triggered, active-high
// interrupt on a second I/O APIC (GSI 24-47); whoever reads the tables
// (network, through runtime/acpi) hands that to DeviceFromACPI, which
// checks it as ParseDevice checks a word. Open checks what is there.
//
// # Register layouts
//
// Version 2 is the modern layout: 64-bit features through select
// registers, FEATURES_OK, each ring's three addresses and QueueReady, and a
// configuration generation. Version 1 is the legacy layout (virtio 1.2
// §4.2.4), which QEMU 7.2 still gives virtio-mmio devices unless told
// otherwise (-global virtio-mmio.force-legacy=false): one guest page size,
// a queue page number and alignment, a 32-bit feature word, and the legacy
// contiguous ring layout. Open validates MagicValue ("virt"), Version (1 or
// 2) and the device ID (0 means an empty slot).
//
// # Interrupts
//
// A device has one line for everything, level-triggered and active high
// (QEMU's DSDT describes microvm's virtio-mmio lines so). Interrupts
// returns one Interrupt per queue and one for configuration changes, all
// on that line: whoever waits on the line reads InterruptStatus, writes the
// bits it read to InterruptACK (which deasserts the line), re-arms the line
// (Rearmer) and wakes the Interrupts the bits concern (bit 0 every queue,
// bit 1 the configuration): virtio.SharedLine, as virtiopci uses for INTx.
// A driver polls every queue when one fires.
//
// The package reaches the machine only through its Platform: a Mapper for
// the register window and a LineInterrupter for the line, which the
// runtime implements. Everything read from the device is checked (magic,
// version, queue sizes, the reset handshake, configuration bounds); a
// violation is an error or a counter in Stats, never a panic or an access
// outside the window.
package virtiommio
