// Package irq gives a program running on the govirtio kernel its device
// interrupts: a Line is an interrupt vector the program owns, and a
// goroutine waits for it with Wait, which parks in the Go network poller
// like a socket read. No thread is held while waiting and nothing polls.
//
//	line, err := irq.AllocMSI()          // a vector for MSI or MSI-X
//	addr, data := line.MSIMessage()       // program these into the device
//	for {
//		if _, err := line.Wait(ctx); err != nil {
//			return err
//		}
//		// ... service the device ...
//	}
//
// Legacy PCI INTx lines are level-triggered: INTx(gsi) routes I/O APIC
// input gsi to a vector, the kernel masks the line each time it fires, and
// the driver calls Rearm once it has acknowledged the device (for virtio,
// after reading the ISR register). Level(gsi) does the same for an
// active-high line of a device on no bus (virtio-mmio: acknowledged through
// its InterruptACK register).
//
// Underneath, a Line is the file /dev/irq/N, /dev/intx/G or /dev/gsi/G of
// the kernel (runtime/kernel): it works with epoll, which is how Wait
// parks; Wait counts firings from kernel.InterruptCount, in the kernel's
// memory, so an interrupt costs no system call. Reading the file also
// returns the number of interrupts since the last read, and writing it
// re-arms a level-triggered line.
//
// MSI messages follow Intel SDM Vol. 3 §11.11: address 0xFEE00000 with the
// destination APIC ID in bits 19:12, data holding the vector with fixed
// delivery, edge-triggered.
package irq
