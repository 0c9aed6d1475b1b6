// Package network brings a govirtio program onto the network with one
// call: Start finds the virtio-net device (on PCI, else among the
// virtio-mmio devices the kernel command line names with
// virtio_mmio.device=SIZE@BASE:IRQ, as QEMU's microvm with acpi=off and
// Firecracker do, or, when it names none, those the ACPI tables' DSDT
// declares, as QEMU's microvm does with ACPI on), opens its virtio
// transport (virtiopci or virtiommio)
// and the driver on the machine's ports, registers, DMA memory and
// interrupts (runtime/machine, runtime/irq), builds a gVisor network stack
// (IPv4, IPv6, ARP, TCP, UDP, ICMP) on the driver's link endpoint, and
// configures an address: from the kernel command line
// (ip=10.0.2.15/24 gw=10.0.2.2 dns=10.0.2.3) or by DHCPv4.
//
//	n, err := network.StartFromArgs(ctx, os.Args[1:], log.Printf)
//	ln, err := n.ListenTCP(80)
//	http.Serve(ln, handler)
//
// Once configured (and after each new DHCP lease) it hands the name
// servers and its address to the kernel, which serves them as
// /etc/resolv.conf and /etc/hosts (kernel.SetNameServers,
// kernel.SetHostAddresses), so that Go's own resolver in the program uses
// them.
//
// Once up, the network also serves the program's socket system calls
// (socket.go, through kernel.ServeSockets): Go's net package (net.Listen,
// net.Dial, http.ListenAndServe, net.ListenPacket) reaches the same stack.
// A program that never calls Start gets the network by importing
// network/auto (the image builder links it into programs that do not
// import this package),
// which brings it up before main from the same command line; Start in such
// an image returns that network (see StartAuto).
//
// It is the glue between the runtime, which knows nothing of virtio, and
// the driver, which knows nothing of how the machine is reached; programs
// that want another arrangement can do the same steps themselves.
package network
