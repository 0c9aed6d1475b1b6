// Command mkimage turns a Go program into an image that QEMU boots with
// -kernel. It has two modes.
//
// # Build mode
//
//	go run ./cmd/mkimage [-files SRC[=/DEST]]... [-roots=false] [-elf ELF]
//	    [-tags TAGS] [-ldflags FLAGS] [-govirtio DIR] -o OUT PACKAGE
//
// PACKAGE is any main package (a directory, or an import path), written
// for Linux with no govirtio import. mkimage builds it, unmodified, into
// an image: go build with CGO_ENABLED=0 GOOS=linux GOARCH=amd64,
// -ldflags "-E _rt0_pvh", and an -overlay that adds one file to the
// package (zz_govirtio_image.go: blank imports of runtime/kernel, which
// holds the PVH entry, and of network/auto once that package exists; see
// runtimeImports) and replaces runtime/kernel/files.gvfs, the kernel's
// embedded file tree, with the one mkimage packed (runtime/fsimage's
// format). Nothing is written to the program's directory. Then the PVH
// note is added as in ELF mode.
//
// The packed tree holds /etc/resolv.conf and /etc/hosts (the kernel's
// own, from the command line and the DHCP lease), /etc/nsswitch.conf
// ("hosts: files dns"), /etc/passwd and /etc/group (root),
// /proc/sys/net/core/somaxconn (4096, Go's listen backlog), the Mozilla CA
// roots at /etc/ssl/certs/ca-certificates.crt (unless -roots=false: about
// 171 KiB, from golang.org/x/crypto/x509roots/fallback's bundle at the
// version go.mod names, without the roots it constrains; crypto/x509
// reads the file when a program first verifies a certificate), and each
// -files SRC: a directory's tree or a single file, at DEST in the image,
// by default /BASE for SRC's last element BASE (a DEST ending in / is a
// directory to put BASE in). The program's working directory starts at
// the root, so -files static serves http.Dir("static"). Files keep their
// permission bits and modification times; the data lives in the image's
// read-only data, so the image needs that much more RAM.
//
// The govirtio linked is the one the program's module requires, or else
// -govirtio DIR, or else the module of the current directory (a govirtio
// checkout: go run ./cmd/mkimage from it). A program whose module does not
// require govirtio builds in a temporary go.work that uses both modules;
// one that does builds with copies of its go.mod and go.sum (-modfile),
// completed for the packages the added imports need, so its own files are
// left as they are.
// -elf keeps the ELF executable (before the note), for its symbols
// (pprof, addr2line).
//
// # ELF mode
//
//	go run ./cmd/mkimage [-entry SYMBOL] -o OUT IN
//
// IN is a static GOOS=linux GOARCH=amd64 CGO_ENABLED=0 ELF64 executable,
// linked with -ldflags "-E <entry symbol> -T <text address>" so that its
// entry point is 32-bit code and every PT_LOAD segment sits at an
// identity-mapped physical address below 4 GiB. OUT is IN with one addition:
// a PT_NOTE segment holding a Xen ELF note of type XEN_ELFNOTE_PHYS32_ENTRY
// (18), whose descriptor is the 32-bit physical entry address. QEMU refuses a
// 64-bit ELF kernel with neither a PVH note nor a multiboot header, and it
// enters the note's address in 32-bit protected mode with paging off.
//
// The entry is IN's e_entry unless -entry names a symbol, looked up in IN's
// symbol table. An assembly function has two symbols when Go code also
// declares it: "NAME.abi0" is the assembly body and "NAME" an ABIInternal
// wrapper around it; -entry NAME picks the assembly body, since no wrapper can
// run in 32-bit mode.
//
// # Layout of OUT
//
// Go's linker leaves no room after the program header table (the section
// headers follow it at once), so mkimage appends to the end of the file, in
// this order: the note (24 bytes: namesz 4, descsz 8, type 18, "Xen\0", the
// entry as a little-endian 64-bit value with the upper half zero), then a new
// program header table. The new table is the old one, entry for entry and
// byte for byte, without PT_PHDR (the table is no longer inside a loaded
// segment, so a PT_PHDR would lie) and with the new PT_NOTE last. The ELF
// header's e_phoff and e_phnum point at it. Nothing else changes: every
// PT_LOAD keeps its offset, addresses and sizes, and the loaded bytes are
// IN's except for those two ELF header fields.
//
// Why an 8-byte descriptor and a separate PT_NOTE: QEMU 7.2 reads the
// descriptor of an ELF64 image as a 64-bit value, and it finds the descriptor
// after the name rounded up to the PT_NOTE segment's p_align; Go's own
// PT_NOTE (build IDs) is not ours to change, so the new note gets its own
// segment with p_align 4.
//
// mkimage checks what PVH needs and fails with an error naming the problem:
// an ELF64 x86-64 ET_EXEC file without PT_INTERP or PT_DYNAMIC; every PT_LOAD
// with p_paddr equal to p_vaddr (PVH loads at p_paddr and runs with paging
// off) and ending at or below 4 GiB; an entry inside an executable PT_LOAD;
// no PVH note already present. On success it prints one line: the entry, the
// symbol it came from and the physical range the image occupies.
package main
