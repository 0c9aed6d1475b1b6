//go:build armbe || arm64be || m68k || mips || mips64 || mips64p32 || ppc || ppc64 || s390 || s390x || shbe || sparc || sparc64

package virtqueue

// hostLittleEndian is false: ring words are byte-swapped after atomic loads
// and before atomic stores. (Legacy devices on a big-endian guest use the
// guest's order; they are not supported there.)
const hostLittleEndian = false
