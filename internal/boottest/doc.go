// Package boottest builds govirtio programs into bootable images and boots
// them under QEMU (through qemu.sh) for tests: one guest to completion with
// Boot, or a long-running one (a server) with Start. BuildImage builds a
// program that imports the kernel itself, the way the Makefile once did;
// BuildWithMkimage builds any main package with cmd/mkimage's build mode
// (runtime linked in, files packed).
package boottest
