package kernel

import (
	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/fsimage"
	"github.com/govirtio/govirtio/runtime/mem"
)

// The read-only file system: the tree packed into the image (packedFiles,
// in runtime/fsimage's format), served with Linux's semantics for open,
// openat, read, pread64, lseek, fstat, newfstatat, getdents64, readlink,
// access, chdir, fchdir and getcwd, so that os.ReadFile, os.ReadDir,
// fs.WalkDir and http.FileServer work on it. Everything is read in place: a node is an
// index into the packed tree and a read copies from the image's data to
// the program's buffer, so the kernel keeps no pointers and allocates
// nothing. Two files are the kernel's own (fsimage.KindKernel):
// /etc/resolv.conf and /etc/hosts live in fixed buffers that start from
// the command line and that the program replaces through SysSetKernelFile
// (SetNameServers, SetHostAddresses in fs_api.go).
//
// The working directory starts at the root (relative paths start there:
// -files static serves http.Dir("static")); chdir and fchdir move it
// within the tree, and getcwd names it.

// System calls of this file (the dispatcher's table has the others).
const (
	sysStat       = 4
	sysLstat      = 6
	sysLseek      = 8
	sysAccess     = 21
	sysSendfile   = 40
	sysGetcwd     = 79
	sysChdir      = 80
	sysFchdir     = 81
	sysGetdents64 = 217
	sysFaccessat  = 269
	sysFaccessat2 = 439
)

// errno values of the file system (include/uapi/asm-generic/errno-base.h).
const (
	eNXIO        = 6
	eACCES       = 13
	eNOTDIR      = 20
	eISDIR       = 21
	eSPIPE       = 29
	eROFS        = 30
	eRANGE       = 34
	eNAMETOOLONG = 36
)

// open(2) and *at(2) flags (include/uapi/asm-generic/fcntl.h, fcntl.h).
const (
	oAccMode          = 3
	oCreat            = 0x40
	oExcl             = 0x80
	oTrunc            = 0x200
	oLargefile        = 0x8000
	oDirectory        = 0x10000
	oTmpfile          = 0x400000 // __O_TMPFILE, without the O_DIRECTORY that O_TMPFILE includes
	atFDCWD           = -100
	atSymlinkNofollow = 0x100
	atEACCESS         = 0x200
	atNoAutomount     = 0x800
	atEmptyPath       = 0x1000
	pathMax           = 4096
)

// lseek whence values.
const (
	seekSet  = 0
	seekCur  = 1
	seekEnd  = 2
	seekData = 3
	seekHole = 4
)

// File types and numbers for stat and getdents64 (include/uapi/linux/stat.h,
// include/linux/fs_types.h).
const (
	sIFDIR     = 0o040000
	sIFREG     = 0o100000
	sIFCHR     = 0o020000
	dtDir      = 4
	dtReg      = 8
	statSize   = 144 // struct stat on x86-64
	direntHdr  = 19  // struct linux_dirent64 up to d_name
	fsDev      = 0x2a
	ttyDev     = 0x8800  // /dev/ttyS0's major 4, minor 64, as st_rdev of the console
	consoleIno = 1 << 32 // outside the packed tree's node numbers
	anonIno    = 1<<32 + 1
)

// kernelFileMax bounds the kernel's own files (resolv.conf, hosts).
const kernelFileMax = 4096

// kernelFile is one of the kernel's own files.
type kernelFile struct {
	data  [kernelFileMax]byte
	n     int   // bytes of data in use
	mtime int64 // last change, ns since 1970: Go's resolver re-reads resolv.conf and hosts when it moves
}

// guestName is the guest's name in /etc/hosts (uname's nodename too).
const guestName = "govirtio"

var (
	// fsReady says fsInit has run; fsValid that packedFiles passed
	// fsimage.Check (else the tree is emptyTree).
	fsReady, fsValid bool
	// kernelFiles are the contents of the fsimage.KindKernel nodes, by slot.
	kernelFiles [fsimage.Slots]kernelFile
	// fsCwd is the working directory's node.
	fsCwd uint32
	// fsPathBuf holds the path of the system call in progress (one CPU, and
	// the kernel runs with interrupts off: one buffer serves every call).
	fsPathBuf [pathMax]byte
)

// emptyTree is a tree of the root directory alone, served when the
// packed tree is malformed.
const emptyTree = "GVFSIMG1\x01\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x48\x00\x00\x00\x00\x00\x00\x00" + // length 72
	"\x01\x00\xed\x01\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00" + // dir, 0755, parent 0, no name
	"\x01\x00\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00" + // first 1, no children
	"\x00\x00\x00\x00\x00\x00\x00\x00" // mtime 0

// fsTree is the file tree being served.
func fsTree() string {
	if fsValid {
		return packedFiles
	}
	return emptyTree
}

// fsInit checks the packed tree and fills the kernel's files from the
// command line, once, at the first file system call.
func fsInit() {
	if fsReady {
		return
	}
	fsReady = true
	if err := fsimage.Check(packedFiles); err != nil {
		console.Print("kernel: the image's packed files are malformed (")
		console.Print(err.Error())
		console.Print("); serving an empty tree\n")
	} else {
		fsValid = true
	}
	initKernelFiles(boot.cmdline[:boot.ncmd])
}

// initKernelFiles writes /etc/resolv.conf from the command line's dns=
// words and /etc/hosts from localhost and its ip= word, so that a static
// configuration resolves before any network code runs.
func initKernelFiles(line []byte) {
	now := wallBase + nanotime()
	rc := &kernelFiles[fsimage.SlotResolvConf]
	rc.n, rc.mtime = 0, now
	rc.put("# /etc/resolv.conf: from dns= on the kernel command line or the DHCP lease\n")
	hosts := &kernelFiles[fsimage.SlotHosts]
	hosts.n, hosts.mtime = 0, now
	hosts.put("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		w := line[i:j]
		i = j
		switch {
		case fsHasPrefix(w, "dns="):
			for v := w[4:]; len(v) > 0; {
				k := 0
				for k < len(v) && v[k] != ',' {
					k++
				}
				if addr := v[:k]; isAddrText(addr) {
					rc.put("nameserver ")
					rc.putBytes(addr)
					rc.put("\n")
				}
				if k < len(v) {
					k++
				}
				v = v[k:]
			}
		case fsHasPrefix(w, "ip="):
			addr := w[3:]
			for k := range addr {
				if addr[k] == '/' {
					addr = addr[:k]
					break
				}
			}
			if isAddrText(addr) {
				hosts.putBytes(addr)
				hosts.put("\t" + guestName + "\n")
			}
		}
	}
}

// isAddrText reports whether w looks like an IPv4 or IPv6 address: what
// may be copied into resolv.conf or hosts without changing their syntax.
func isAddrText(w []byte) bool {
	if len(w) == 0 || len(w) > 45 {
		return false
	}
	for _, c := range w {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func fsHasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// put and putBytes append to a kernel file, dropping what does not fit.
func (k *kernelFile) put(s string) { k.n += copy(k.data[k.n:], s) }

func (k *kernelFile) putBytes(b []byte) { k.n += copy(k.data[k.n:], b) }

// fsSyscall runs the file system's system calls (the dispatcher's default
// case hands them over); ok is false for any other number.
func fsSyscall(nr, a0, a1, a2, a3 uint64) (r int64, ok bool) {
	switch nr {
	case sysPread64:
		return fsPread(int64(a0), a1, a2, int64(a3)), true
	case sysLseek:
		return fsLseek(int64(a0), int64(a1), a2), true
	case sysOpen:
		return fsOpenat(atFDCWD, a0, a1), true
	case sysOpenat:
		return fsOpenat(int64(a0), a1, a2), true
	case sysFstat:
		return fsFstat(int64(a0), a1), true
	case sysNewfstatat:
		return fsFstatat(int64(a0), a1, a2, a3), true
	case sysStat:
		return fsFstatat(atFDCWD, a0, a1, 0), true
	case sysLstat:
		return fsFstatat(atFDCWD, a0, a1, atSymlinkNofollow), true
	case sysGetdents64:
		return fsGetdents(int64(a0), a1, a2), true
	case sysReadlink:
		return fsReadlinkat(atFDCWD, a0), true
	case sysReadlinkat:
		return fsReadlinkat(int64(a0), a1), true
	case sysAccess:
		return fsAccessat(atFDCWD, a0, a1, 0), true
	case sysFaccessat:
		return fsAccessat(int64(a0), a1, a2, 0), true
	case sysFaccessat2:
		return fsAccessat(int64(a0), a1, a2, a3), true
	case sysGetcwd:
		return fsGetcwd(a0, a1), true
	case sysChdir:
		return fsChdir(-1, a0), true
	case sysFchdir:
		return fsChdir(int64(a0), 0), true
	case sysSendfile:
		return fsSendfile(int64(a0), int64(a1)), true
	case SysSetKernelFile:
		return sysSetKernelFile(a0, a1, a2), true
	}
	return 0, false
}

// copyPath copies the NUL-terminated path at va into fsPathBuf and returns
// its length, or -errno.
func copyPath(va uint64) int64 {
	n := uint64(0)
	for n < pathMax {
		// Check a page at a time, not a byte at a time.
		chunk := mem.PageSize - (va+n)%mem.PageSize
		if chunk > pathMax-n {
			chunk = pathMax - n
		}
		if !userRange(va+n, chunk, false) {
			// The string may end before the unmapped part: go on byte by byte.
			if !userRange(va+n, 1, false) {
				return -eFAULT
			}
			chunk = 1
		}
		src := userBytes(va+n, int(chunk))
		for _, c := range src {
			if c == 0 {
				return int64(n)
			}
			fsPathBuf[n] = c
			n++
		}
	}
	return -eNAMETOOLONG
}

// isDevicePath reports the interrupt files of openDevice.
func isDevicePath(p []byte) bool {
	return fsHasPrefix(p, "/dev/irq/") || fsHasPrefix(p, "/dev/intx/") || fsHasPrefix(p, "/dev/gsi/")
}

// fsWalkResult is where a path led.
type fsWalkResult struct {
	node uint32 // the node found; with errno ENOENT and lastMissing, the directory the last name is missing from
	// lastMissing: only the last component is missing (an O_CREAT would
	// make it there).
	lastMissing bool
	errno       int64 // 0 or a negative errno
}

// fsWalkPath resolves p (absolute, or relative to the directory node start)
// in the tree t: "." and ".." as Linux has them (the root's parent is
// itself), repeated slashes as one, a trailing slash only after a
// directory.
func fsWalkPath(t string, start uint32, p []byte) fsWalkResult {
	if len(p) == 0 {
		return fsWalkResult{errno: -eNOENT}
	}
	cur := start
	if p[0] == '/' {
		cur = 0
	}
	for i := 0; ; {
		for i < len(p) && p[i] == '/' {
			i++
		}
		if i == len(p) {
			break
		}
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		name := p[i:j]
		i = j
		dir := fsimage.At(t, cur)
		if !dir.IsDir() {
			return fsWalkResult{errno: -eNOTDIR}
		}
		if len(name) > fsimage.MaxName {
			return fsWalkResult{errno: -eNAMETOOLONG}
		}
		switch string(name) {
		case ".":
		case "..":
			cur = dir.Parent
		default:
			c, ok := fsimage.Lookup(t, dir, name)
			if !ok {
				for i < len(p) && p[i] == '/' {
					i++
				}
				return fsWalkResult{node: cur, lastMissing: i == len(p), errno: -eNOENT}
			}
			cur = c
		}
	}
	if p[len(p)-1] == '/' && !fsimage.At(t, cur).IsDir() {
		return fsWalkResult{errno: -eNOTDIR}
	}
	return fsWalkResult{node: cur}
}

// fsLookupAt copies the path at va and resolves it relative to dirfd
// (fsWalkAt).
func fsLookupAt(dirfd int64, va uint64, emptyOK bool) (fsWalkResult, int64) {
	n := copyPath(va)
	if n < 0 {
		return fsWalkResult{errno: n}, -1
	}
	return fsWalkAt(dirfd, fsPathBuf[:n], emptyOK)
}

// fsWalkAt resolves p relative to dirfd (AT_FDCWD: the working
// directory). emptyOK lets an empty path mean dirfd itself
// (AT_EMPTY_PATH); fd is then dirfd, else -1.
func fsWalkAt(dirfd int64, p []byte, emptyOK bool) (r fsWalkResult, fd int64) {
	fsInit()
	if len(p) == 0 && emptyOK {
		if dirfd == atFDCWD {
			return fsWalkResult{node: fsCwd}, -1
		}
		if fileFor(dirfd) == nil {
			return fsWalkResult{errno: -eBADF}, -1
		}
		return fsWalkResult{}, dirfd
	}
	start := fsCwd
	if len(p) > 0 && p[0] != '/' && dirfd != atFDCWD {
		f := fileFor(dirfd)
		if f == nil {
			return fsWalkResult{errno: -eBADF}, -1
		}
		if f.kind != fileRegular || !fsimage.At(fsTree(), f.node).IsDir() {
			return fsWalkResult{errno: -eNOTDIR}, -1
		}
		start = f.node
	}
	return fsWalkPath(fsTree(), start, p), -1
}

// fsOpenat is open(2) and openat(2). The interrupt files (/dev/irq/N...)
// are openDevice's; everything else is looked up in the tree. The file
// system is read-only: asking to write, truncate or create gets EROFS
// (EISDIR for a directory, EEXIST for O_CREAT|O_EXCL on an existing
// name), as Linux answers on a read-only mount.
func fsOpenat(dirfd int64, path, flags uint64) int64 {
	n := copyPath(path)
	if n < 0 {
		return n
	}
	p := fsPathBuf[:n]
	if isDevicePath(p) {
		return openDevice(p, flags)
	}
	r, _ := fsWalkAt(dirfd, p, false)
	write := flags&oAccMode != 0 || flags&oTrunc != 0
	if r.errno != 0 {
		if r.errno == -eNOENT && r.lastMissing && flags&(oCreat|oTmpfile) != 0 {
			if flags&oCreat != 0 && flags&oDirectory != 0 {
				return -eINVAL
			}
			return -eROFS
		}
		return r.errno
	}
	nd := fsimage.At(fsTree(), r.node)
	switch {
	case flags&oCreat != 0 && flags&oExcl != 0:
		return -eEXIST
	case flags&oTmpfile != 0:
		if !nd.IsDir() {
			return -eNOTDIR
		}
		return -eROFS
	case nd.IsDir() && (write || flags&oCreat != 0):
		return -eISDIR
	case !nd.IsDir() && flags&oDirectory != 0:
		return -eNOTDIR
	case write:
		return -eROFS
	}
	fd := allocFD(fileRegular)
	if fd < 0 {
		return fd
	}
	f := fileFor(fd)
	f.node = r.node
	f.nonblock = flags&oNonblock != 0
	return fd
}

// fsContent returns a file node's bytes: either a string of the image's or
// a kernel file's buffer (one of the two is empty).
func fsContent(t string, nd fsimage.Node) (string, []byte) {
	if nd.Kind == fsimage.KindKernel {
		k := &kernelFiles[nd.Slot]
		return "", k.data[:k.n]
	}
	return fsimage.Data(t, nd), nil
}

// fsReadAt copies up to n bytes from offset off of f's file to the
// program's buffer. Reading at or past the end returns 0.
func fsReadAt(f *file, buf, n, off uint64) int64 {
	t := fsTree()
	nd := fsimage.At(t, f.node)
	if nd.IsDir() {
		return -eISDIR
	}
	s, b := fsContent(t, nd)
	size := uint64(len(s) + len(b))
	if off >= size || n == 0 {
		return 0
	}
	if n > size-off {
		n = size - off
	}
	if !userRange(buf, n, true) {
		return -eFAULT
	}
	dst := userBytes(buf, int(n))
	if b != nil {
		copy(dst, b[off:])
	} else {
		copy(dst, s[off:])
	}
	return int64(n)
}

// fsRead is read(2) on a file of the tree: at the file's offset, which it
// advances.
func fsRead(f *file, buf, n uint64) int64 {
	r := fsReadAt(f, buf, n, f.pos)
	if r > 0 {
		f.pos += uint64(r)
	}
	return r
}

// fsPread is pread64(2): at off, the file's offset untouched. Only files
// of the tree can: the console, eventfds and the rest are not seekable.
func fsPread(fd int64, buf, n uint64, off int64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if f.kind != fileRegular {
		return -eSPIPE
	}
	if off < 0 {
		return -eINVAL
	}
	return fsReadAt(f, buf, n, uint64(off))
}

// fsLseek is lseek(2). On a directory the offset is getdents64's position
// (0 and 1 are "." and "..", then the children), which only SEEK_SET and
// SEEK_CUR move.
func fsLseek(fd int64, off int64, whence uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if f.kind != fileRegular {
		return -eSPIPE
	}
	t := fsTree()
	nd := fsimage.At(t, f.node)
	var size int64
	if !nd.IsDir() {
		s, b := fsContent(t, nd)
		size = int64(len(s) + len(b))
	}
	var pos int64
	switch whence {
	case seekSet:
		pos = off
	case seekCur:
		pos = int64(f.pos) + off
	case seekEnd, seekData, seekHole:
		if nd.IsDir() {
			return -eINVAL
		}
		switch whence {
		case seekEnd:
			pos = size + off
		case seekData: // one extent of data, no holes
			if off < 0 || off >= size {
				return -eNXIO
			}
			pos = off
		case seekHole: // the only hole is the end
			if off < 0 || off >= size {
				return -eNXIO
			}
			pos = size
		}
	default:
		return -eINVAL
	}
	if pos < 0 {
		return -eINVAL
	}
	f.pos = uint64(pos)
	return pos
}

// fsGetdents is getdents64(2): as many whole struct linux_dirent64 as fit
// in size bytes, from the directory's position on; 0 at the end, EINVAL
// when not even the next one fits.
func fsGetdents(fd int64, buf, size uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	if f.kind != fileRegular {
		return -eNOTDIR
	}
	t := fsTree()
	dir := fsimage.At(t, f.node)
	if !dir.IsDir() {
		return -eNOTDIR
	}
	written := uint64(0)
	for f.pos < dir.Count+2 {
		var name string
		var ino uint64
		typ := uint8(dtDir)
		switch f.pos {
		case 0:
			name, ino = ".", uint64(f.node)+1
		case 1:
			name, ino = "..", uint64(dir.Parent)+1
		default:
			c := uint32(dir.First + f.pos - 2)
			nd := fsimage.At(t, c)
			name, ino = fsimage.Name(t, nd), uint64(c)+1
			if !nd.IsDir() {
				typ = dtReg
			}
		}
		reclen := (direntHdr + uint64(len(name)) + 1 + 7) &^ 7
		if written+reclen > size {
			if written == 0 {
				return -eINVAL
			}
			break
		}
		if !userRange(buf+written, reclen, true) {
			return -eFAULT
		}
		b := userBytes(buf+written, int(reclen))
		clear(b)
		le.PutUint64(b, ino)
		le.PutUint64(b[8:], f.pos+1) // d_off: where the next entry is
		le.PutUint16(b[16:], uint16(reclen))
		b[18] = typ
		copy(b[direntHdr:], name)
		written += reclen
		f.pos++
	}
	return int64(written)
}

// statNode fills a struct stat for node i of the tree.
func statNode(buf uint64, i uint32) int64 {
	t := fsTree()
	nd := fsimage.At(t, i)
	mode := uint32(sIFREG) | uint32(nd.Perm)
	nlink, size := uint64(1), uint64(0)
	mtime := nd.Mtime * 1e9
	if nd.IsDir() {
		mode = sIFDIR | uint32(nd.Perm)
		nlink = 2
		for c := nd.First; c < nd.First+nd.Count; c++ {
			if fsimage.At(t, uint32(c)).IsDir() {
				nlink++
			}
		}
	} else {
		s, b := fsContent(t, nd)
		size = uint64(len(s) + len(b))
		if nd.Kind == fsimage.KindKernel {
			mtime = kernelFiles[nd.Slot].mtime
		}
	}
	return fillStat(buf, fsDev, uint64(i)+1, mode, nlink, 0, size, mtime)
}

// fillStat writes a struct stat (x86-64 layout) to the program's buf.
func fillStat(buf, dev, ino uint64, mode uint32, nlink, rdev, size uint64, mtime int64) int64 {
	if !userRange(buf, statSize, true) {
		return -eFAULT
	}
	b := userBytes(buf, statSize)
	clear(b)
	le.PutUint64(b[0:], dev)
	le.PutUint64(b[8:], ino)
	le.PutUint64(b[16:], nlink)
	le.PutUint32(b[24:], mode)
	le.PutUint64(b[40:], rdev)
	le.PutUint64(b[48:], size)
	le.PutUint64(b[56:], mem.PageSize)          // st_blksize
	le.PutUint64(b[64:], (size+511)/512)        // st_blocks
	for _, off := range [...]int{72, 88, 104} { // atime, mtime, ctime
		le.PutUint64(b[off:], uint64(mtime/1e9))
		le.PutUint64(b[off+8:], uint64(mtime%1e9))
	}
	return 0
}

// fsFstat is fstat(2): a file of the tree, or the console (a character
// device), or an anonymous inode (epoll, eventfd, interrupt files).
func fsFstat(fd int64, buf uint64) int64 {
	f := fileFor(fd)
	if f == nil {
		return -eBADF
	}
	switch f.kind {
	case fileRegular:
		return statNode(buf, f.node)
	case fileConsole:
		return fillStat(buf, 0, consoleIno, sIFCHR|0o620, 1, ttyDev, 0, 0)
	}
	return fillStat(buf, 0, anonIno, 0o600, 1, 0, 0, 0)
}

// fsFstatat is newfstatat(2), and stat(2) and lstat(2) with AT_FDCWD:
// there are no symbolic links, so AT_SYMLINK_NOFOLLOW changes nothing.
func fsFstatat(dirfd int64, path, buf, flags uint64) int64 {
	if flags&^(atSymlinkNofollow|atNoAutomount|atEmptyPath) != 0 {
		return -eINVAL
	}
	r, fd := fsLookupAt(dirfd, path, flags&atEmptyPath != 0)
	if r.errno != 0 {
		return r.errno
	}
	if fd >= 0 {
		return fsFstat(fd, buf)
	}
	return statNode(buf, r.node)
}

// fsReadlinkat is readlink(2) and readlinkat(2): nothing is a symbolic
// link, so a name that exists gets EINVAL (and /proc/self/exe, which
// os.Executable reads, ENOENT).
func fsReadlinkat(dirfd int64, path uint64) int64 {
	r, _ := fsLookupAt(dirfd, path, false)
	if r.errno != 0 {
		return r.errno
	}
	return -eINVAL
}

// Access modes (include/uapi/linux/fcntl.h... unistd.h).
const (
	accessX = 1
	accessW = 2
)

// fsAccessat is access(2), faccessat(2) and faccessat2(2), for uid 0 on a
// read-only mount: writing is EROFS, executing needs an x bit.
func fsAccessat(dirfd int64, path, mode, flags uint64) int64 {
	if mode&^7 != 0 || flags&^(atEACCESS|atSymlinkNofollow|atEmptyPath) != 0 {
		return -eINVAL
	}
	r, fd := fsLookupAt(dirfd, path, flags&atEmptyPath != 0)
	if r.errno != 0 {
		return r.errno
	}
	node := r.node
	if fd >= 0 {
		f := fileFor(fd)
		if f.kind != fileRegular {
			if mode&accessX != 0 {
				return -eACCES
			}
			return 0
		}
		node = f.node
	}
	if mode&accessW != 0 {
		return -eROFS
	}
	if nd := fsimage.At(fsTree(), node); mode&accessX != 0 && nd.Perm&0o111 == 0 {
		return -eACCES
	}
	return 0
}

// fsGetcwd is getcwd(2): the working directory's path, built from its
// node up to the root.
func fsGetcwd(buf, size uint64) int64 {
	fsInit()
	t := fsTree()
	n := uint64(1) // the NUL, or "/" for the root
	for i := fsCwd; i != 0; i = fsimage.At(t, i).Parent {
		n += 1 + uint64(fsimage.At(t, i).NameLen)
	}
	if fsCwd == 0 {
		n++
	}
	if size < n {
		return -eRANGE
	}
	if !userRange(buf, n, true) {
		return -eFAULT
	}
	b := userBytes(buf, int(n))
	b[n-1] = 0
	if fsCwd == 0 {
		b[0] = '/'
		return int64(n)
	}
	end := n - 1
	for i := fsCwd; i != 0; {
		nd := fsimage.At(t, i)
		end -= uint64(nd.NameLen)
		copy(b[end:], fsimage.Name(t, nd))
		end--
		b[end] = '/'
		i = nd.Parent
	}
	return int64(n)
}

// fsChdir is chdir(2) (fd -1, path) and fchdir(2) (fd).
func fsChdir(fd int64, path uint64) int64 {
	var node uint32
	if fd >= 0 {
		f := fileFor(fd)
		if f == nil {
			return -eBADF
		}
		if f.kind != fileRegular {
			return -eNOTDIR
		}
		node = f.node
	} else {
		r, _ := fsLookupAt(atFDCWD, path, false)
		if r.errno != 0 {
			return r.errno
		}
		node = r.node
	}
	if !fsimage.At(fsTree(), node).IsDir() {
		return -eNOTDIR
	}
	fsCwd = node
	return 0
}

// fsSendfile is sendfile(2), which Go's io.Copy from a file to a socket
// tries first (os.File.WriteTo, net.TCPConn.ReadFrom). It copies nothing:
// EINVAL (a descriptor sendfile cannot use) makes Go fall back to read
// and write, quietly, where an unknown call would be named on the
// console. (Sending from the image's data with the socket's own write
// is the better answer once sockets exist.)
func fsSendfile(outfd, infd int64) int64 {
	if fileFor(outfd) == nil || fileFor(infd) == nil {
		return -eBADF
	}
	return -eINVAL
}
