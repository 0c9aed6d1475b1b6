// Package console drives the first serial port (COM1, a 16550 UART at I/O
// port 0x3F8), the bare-metal runtime's console: what the program writes
// to standard output and standard error, and the kernel's own messages.
//
// Output is polled (the transmit-holding-register-empty bit); nothing here
// allocates, so the kernel can print from trap handlers.
package console
