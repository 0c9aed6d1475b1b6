// Package fsimage is the format of the read-only file tree packed into a
// govirtio image: the files the kernel serves to the program through
// open, read, fstat and getdents64 (runtime/kernel's fs.go).
//
// The build command (cmd/mkimage) writes a tree with a Writer; the image
// embeds it as one string in its read-only data; the kernel reads it in
// place with the functions of reader.go, which neither allocate nor keep
// pointers, as kernel code must not (see runtime/kernel's package
// documentation). File contents are never copied into the kernel: a read
// copies straight from the image's data to the program's buffer.
//
// # Layout
//
// All numbers are little-endian. An image is a header, a node table, the
// names and the file data:
//
//	header (32 bytes)
//	  0  magic "GVFSIMG1"
//	  8  number of nodes (uint32, at least 1)
//	 12  zero (uint32)
//	 16  zero (uint64)
//	 24  length of the whole image in bytes (uint64)
//	node table at 32, 40 bytes a node:
//	  0  kind (uint8): KindDir, KindFile or KindKernel
//	  1  slot (uint8): for KindKernel, which of the kernel's own files
//	  2  permission bits (uint16, 0o777 at most)
//	  4  parent node (uint32)
//	  8  offset of the name in the image (uint32)
//	 12  length of the name (uint32, 1..255; the root's is 0)
//	 16  directory: first child node; file: offset of the data (uint64)
//	 24  directory: number of children; file: length of the data (uint64)
//	 32  modification time, seconds since 1970 (int64)
//
// Node 0 is the root directory (its parent is itself). Nodes are in
// breadth-first order: the children of a directory are consecutive nodes,
// after it, sorted by name (bytewise), so a lookup is a binary search and
// a directory listing a range of nodes. Names are non-empty, at most 255
// bytes, without '/' or NUL, and neither "." nor "..". Check verifies all
// of this once; the other readers trust an image that passed.
//
// A KindKernel node is a file whose contents the kernel holds and may
// replace while the program runs (/etc/resolv.conf after a DHCP lease,
// /etc/hosts once the address is known); its slot names it (SlotResolvConf,
// SlotHosts) and its data fields are zero.
package fsimage
