// Package boottest builds govirtio programs into bootable images and boots
// them under QEMU (through qemu.sh) for tests: one guest to completion with
// Boot, or a long-running one (a server) with Start.
package boottest
