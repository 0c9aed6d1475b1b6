package kernel

import (
	"math/bits"
	"unsafe"

	"github.com/govirtio/govirtio/runtime/mem"
)

// The file-descriptor table. Go's net package holds one descriptor per
// connection, so the table must reach tens of thousands of entries, yet an
// image of 24 MiB that opens a handful of files must not pay for them. The
// table is therefore a directory of chunks, each one frame of files taken
// from the frame allocator the first time a descriptor in its range is
// handed out (and kept: descriptors are reused lowest first, as POSIX
// requires, so the chunks in use stay the low ones). A two-level bitmap
// finds the lowest free descriptor in a few word scans however many are
// open. The kernel's own variables for all this are about 16 KiB.
const (
	// maxFiles is the number of descriptors, reported as RLIMIT_NOFILE.
	maxFiles = 1 << 16
	// filesPerChunk is how many files one frame holds.
	filesPerChunk = mem.PageSize / int(unsafe.Sizeof(file{}))
	fileChunks    = (maxFiles + filesPerChunk - 1) / filesPerChunk
)

var (
	// fileChunk holds the physical address of each chunk of files, 0
	// until a descriptor in its range is first used.
	fileChunk [fileChunks]uint64
	// fdUsed has a bit per descriptor, set while it is open (or being
	// opened); fdFull a bit per word of fdUsed, set when all 64 are.
	fdUsed [maxFiles / 64]uint64
	fdFull [maxFiles / 64 / 64]uint64
	// openFiles counts the open descriptors.
	openFiles int
	// irqFile maps an interrupt vector to its file's descriptor plus one
	// (0: no file), so that an interrupt finds its file at once.
	irqFile [256]int32
)

// initFiles empties the table and opens the console as 0, 1 and 2.
func initFiles() {
	fileChunk = [fileChunks]uint64{}
	fdUsed = [maxFiles / 64]uint64{}
	fdFull = [maxFiles / 64 / 64]uint64{}
	irqFile = [256]int32{}
	openFiles = 0
	initEpollRegs()
	for fd := 0; fd < 3; fd++ {
		if allocFD(fileConsole) != int64(fd) {
			panicKernel("console descriptor", uint64(fd))
		}
	}
}

// fileSlot returns the file struct of fd whether or not it is open, or
// nil when its chunk was never allocated.
func fileSlot(fd int64) *file {
	if fd < 0 || fd >= maxFiles {
		return nil
	}
	c := fileChunk[fd/int64(filesPerChunk)]
	if c == 0 {
		return nil
	}
	return &(*[filesPerChunk]file)(physPtr(c))[fd%int64(filesPerChunk)]
}

// fileFor returns the open file fd, or nil.
func fileFor(fd int64) *file {
	f := fileSlot(fd)
	if f == nil || f.kind == fileNone {
		return nil
	}
	return f
}

// allocFD opens the lowest free descriptor as a file of kind. It returns
// -EMFILE when all are open and -ENOMEM when no frame is left for a new
// chunk.
func allocFD(kind uint8) int64 {
	fd := lowestFreeFD()
	if fd < 0 {
		return -eMFILE
	}
	ci := fd / int64(filesPerChunk)
	if fileChunk[ci] == 0 {
		p, ok := allocZeroed()
		if !ok {
			return -eNOMEM
		}
		fileChunk[ci] = p
	}
	w := fd / 64
	fdUsed[w] |= 1 << (fd % 64)
	if fdUsed[w] == ^uint64(0) {
		fdFull[w/64] |= 1 << (w % 64)
	}
	openFiles++
	f := fileSlot(fd)
	*f = file{kind: kind, gsi: -1}
	return fd
}

// lowestFreeFD finds the lowest descriptor not open, or -1.
func lowestFreeFD() int64 {
	for i, full := range fdFull {
		if full == ^uint64(0) {
			continue
		}
		w := i*64 + bits.TrailingZeros64(^full)
		return int64(w*64 + bits.TrailingZeros64(^fdUsed[w]))
	}
	return -1
}

// freeFD marks fd free; its file struct must have been cleared.
func freeFD(fd int64) {
	w := fd / 64
	if fdUsed[w]&(1<<(fd%64)) == 0 {
		return
	}
	fdUsed[w] &^= 1 << (fd % 64)
	fdFull[w/64] &^= 1 << (w % 64)
	openFiles--
}
