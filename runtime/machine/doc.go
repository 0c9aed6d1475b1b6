// Package machine gives drivers the machine they run on under the govirtio
// kernel: I/O ports, memory-mapped device registers, memory a device can
// reach by physical address (DMA), and interrupts (through runtime/irq).
// Drivers do not import it: they declare the small interfaces they need
// (pci.PortIO, pci.Mapper, virtqueue.DMA, ...) and the program hands them
// these implementations, or a device model in host-side tests.
//
// The program runs in ring 0, so port I/O and register accesses are single
// instructions (runtime/cpu) with no system call; mapping registers and
// allocating DMA memory ask the kernel once.
package machine
