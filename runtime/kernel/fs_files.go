package kernel

import _ "embed" // the packed file tree

// packedFiles is the image's file tree, in runtime/fsimage's format. The
// files.gvfs beside this file is the standard tree (/etc/resolv.conf,
// /etc/hosts, /etc/nsswitch.conf, /etc/passwd, /etc/group,
// /proc/sys/net/core/somaxconn; see
// TestStandardTreeIsCurrent); the
// build command (cmd/mkimage) replaces files.gvfs, through go build
// -overlay, with the tree it packed. The linker initialises the string, so
// its bytes sit in the image's read-only data and the kernel can read it
// before the Go runtime starts; the kernel only reads it.
//
//go:embed files.gvfs
var packedFiles string
