package kernel

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govirtio/govirtio/runtime/fsimage"
)

// The file system's tests run the system calls on the host as the other
// kernel tests do (setupKernel), over a tree built with fsimage.Writer.

var updateStandard = flag.Bool("update-files", false, "rewrite files.gvfs from fsimage's standard tree")

// The tree the image embeds by default is the standard one; `go test
// ./runtime/kernel -run TestStandardTreeIsCurrent -update-files` writes
// it again after fsimage changes.
func TestStandardTreeIsCurrent(t *testing.T) {
	var w fsimage.Writer
	if err := w.AddStandard(); err != nil {
		t.Fatal(err)
	}
	want, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if *updateStandard {
		if err := os.WriteFile("files.gvfs", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if packedFiles != string(want) {
		t.Error("files.gvfs is not fsimage's standard tree: run go test -run TestStandardTreeIsCurrent -update-files")
	}
}

// A malformed packed tree is replaced by emptyTree, which must itself be
// well formed: the root directory alone.
func TestEmptyTreeIsARootAlone(t *testing.T) {
	if err := fsimage.Check(emptyTree); err != nil {
		t.Fatal(err)
	}
	if root := fsimage.At(emptyTree, 0); fsimage.Count(emptyTree) != 1 || !root.IsDir() || root.Count != 0 {
		t.Errorf("emptyTree: %d nodes, root %+v", fsimage.Count(emptyTree), root)
	}
}

func TestSendfileLetsGoFallBackToReadAndWrite(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv/index.html"))
	if _, r := call(sysSendfile, 1, fd, 0, 15); r != -eINVAL {
		t.Errorf("sendfile: %d, want -EINVAL (Go then copies with read and write)", r)
	}
	if _, r := call(sysSendfile, 1, 50, 0, 15); r != -eBADF {
		t.Errorf("sendfile from a closed fd: %d, want -EBADF", r)
	}
}

const fsMtime = 1_700_000_000

// fsKernel is a kernel with a test tree:
//
//	/etc/{hosts,resolv.conf,nsswitch.conf}   the standard tree
//	/srv/index.html                          "<h1>hello</h1>\n"
//	/srv/big.bin                             10000 bytes, byte i = i%251
//	/srv/css/site.css, /srv/empty/           a subdirectory, an empty one
//	/bin/tool                                mode 0755
type fsKernel struct {
	*testKernel
	big []byte
}

func setupFS(t *testing.T, cmdline string) *fsKernel {
	t.Helper()
	k := setupKernel(t)
	var w fsimage.Writer
	if err := w.AddStandard(); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 10000)
	for i := range big {
		big[i] = byte(i % 251)
	}
	mt := time.Unix(fsMtime, 0)
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"/srv/index.html", []byte("<h1>hello</h1>\n"), 0o644},
		{"/srv/big.bin", big, 0o644},
		{"/srv/css/site.css", []byte("body{}"), 0o644},
		{"/bin/tool", []byte("#!"), 0o755},
	} {
		if err := w.AddFile(f.name, f.data, f.perm, mt); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddDir("/srv/empty", 0o755, mt); err != nil {
		t.Fatal(err)
	}
	img, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	saved := packedFiles
	packedFiles = string(img)
	fsReady, fsValid, fsCwd = false, false, 0
	kernelFiles = [fsimage.Slots]kernelFile{}
	boot.ncmd = copy(boot.cmdline[:], cmdline)
	wallBase = 1_700_000_000e9
	t.Cleanup(func() {
		packedFiles = saved
		fsReady, fsValid, fsCwd = false, false, 0
		boot.ncmd = 0
	})
	return &fsKernel{testKernel: k, big: big}
}

// cpath is cstring kept from being inlined: inlined with a constant of
// 17 to 32 bytes, its copy into k.at's memory crashes Go 1.26.8's
// compiler (disjointTypes in isInlinableMemmove).
//
//go:noinline
func (k *fsKernel) cpath(off uint64, s string) uint64 { return k.cstring(off, s) }

// open opens path (absolute or relative to the root) with flags.
func (k *fsKernel) open(path string, flags uint64) int64 {
	_, r := call(sysOpenat, uint64(atFDCWD&(1<<64-1)), k.cpath(0, path), flags)
	return r
}

// mustOpen opens path read-only or fails the test.
func (k *fsKernel) mustOpen(t *testing.T, path string) int64 {
	t.Helper()
	fd := k.open(path, 0)
	if fd < 0 {
		t.Fatalf("open %s: %d", path, fd)
	}
	return fd
}

// readAll reads fd to the end in chunks of n bytes, as os.ReadFile does.
func (k *fsKernel) readAll(t *testing.T, fd int64, n int) []byte {
	t.Helper()
	buf, b := k.at(4096, n)
	var out []byte
	for {
		_, r := call(sysRead, uint64(fd), buf, uint64(n))
		if r < 0 {
			t.Fatalf("read: %d", r)
		}
		if r == 0 {
			return out
		}
		out = append(out, b[:r]...)
	}
}

// stat is the part of a struct stat the tests look at.
type stat struct {
	ino, nlink, size uint64
	mode             uint32
	mtime            int64
}

func (k *fsKernel) decodeStat(b []byte) stat {
	return stat{
		ino: le64.Uint64(b[8:]), nlink: le64.Uint64(b[16:]), mode: le64.Uint32(b[24:]),
		size: le64.Uint64(b[48:]), mtime: int64(le64.Uint64(b[88:])),
	}
}

func (k *fsKernel) fstat(t *testing.T, fd int64) stat {
	t.Helper()
	buf, b := k.at(8192, statSize)
	if _, r := call(sysFstat, uint64(fd), buf); r != 0 {
		t.Fatalf("fstat %d: %d", fd, r)
	}
	return k.decodeStat(b)
}

// dirent is one decoded struct linux_dirent64.
type dirent struct {
	ino  uint64
	typ  uint8
	name string
}

func decodeDirents(b []byte) []dirent {
	var out []dirent
	for len(b) > 0 {
		reclen := le64.Uint16(b[16:])
		name := b[direntHdr:reclen]
		name = name[:bytes.IndexByte(name, 0)]
		out = append(out, dirent{ino: le64.Uint64(b), typ: b[18], name: string(name)})
		b = b[reclen:]
	}
	return out
}

func TestReadingAFileAsOSReadFileDoes(t *testing.T) {
	k := setupFS(t, "")
	fd := k.mustOpen(t, "/srv/big.bin")
	if st := k.fstat(t, fd); st.size != 10000 || st.mode != sIFREG|0o644 || st.nlink != 1 || st.mtime != fsMtime {
		t.Errorf("fstat: %+v", st)
	}
	if got := k.readAll(t, fd, 512); !bytes.Equal(got, k.big) {
		t.Errorf("read %d bytes, not the file's 10000", len(got))
	}
	if _, r := call(sysClose, uint64(fd)); r != 0 {
		t.Errorf("close: %d", r)
	}
	if _, r := call(sysRead, uint64(fd), k.userBase, 1); r != -eBADF {
		t.Errorf("read after close: %d, want -EBADF", r)
	}
}

func TestReadPastTheEndReturnsZero(t *testing.T) {
	k := setupFS(t, "")
	fd := k.mustOpen(t, "/srv/index.html")
	if _, r := call(sysLseek, uint64(fd), 1000, seekSet); r != 1000 {
		t.Fatalf("lseek past the end: %d, want 1000 (allowed)", r)
	}
	if _, r := call(sysRead, uint64(fd), k.userBase, 64); r != 0 {
		t.Errorf("read past the end: %d, want 0", r)
	}
	if _, r := call(sysPread64, uint64(fd), k.userBase, 64, 15); r != 0 {
		t.Errorf("pread64 at the end: %d, want 0", r)
	}
}

func TestPreadReadsAtAnOffsetAndLeavesTheFileOffset(t *testing.T) {
	k := setupFS(t, "")
	fd := k.mustOpen(t, "/srv/index.html")
	buf, b := k.at(0, 5)
	if _, r := call(sysPread64, uint64(fd), buf, 5, 4); r != 5 || string(b) != "hello" {
		t.Errorf("pread64: %d %q", r, b)
	}
	if _, r := call(sysRead, uint64(fd), buf, 4); r != 4 || string(b[:4]) != "<h1>" {
		t.Errorf("read after pread64: %d %q, want the file's start", r, b[:4])
	}
	if _, r := call(sysPread64, uint64(fd), buf, 5, ^uint64(0)); r != -eINVAL {
		t.Errorf("pread64 at a negative offset: %d, want -EINVAL", r)
	}
	if _, r := call(sysPread64, 1, buf, 5, 0); r != -eSPIPE {
		t.Errorf("pread64 on the console: %d, want -ESPIPE", r)
	}
	if _, r := call(sysPread64, 40, buf, 5, 0); r != -eBADF {
		t.Errorf("pread64 on a closed fd: %d, want -EBADF", r)
	}
}

func TestLseek(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv/index.html"))
	neg := func(v int64) uint64 { return uint64(v) }
	tests := []struct {
		name   string
		off    uint64
		whence uint64
		want   int64
	}{
		{"SEEK_END gives the size", 0, seekEnd, 15},
		{"SEEK_CUR moves from there", neg(-5), seekCur, 10},
		{"SEEK_SET goes anywhere", 3, seekSet, 3},
		{"a negative result is EINVAL", neg(-1), seekSet, -eINVAL},
		{"SEEK_DATA inside the file stays", 2, seekData, 2},
		{"SEEK_DATA at the end is ENXIO", 15, seekData, -eNXIO},
		{"SEEK_HOLE finds the end", 2, seekHole, 15},
		{"an unknown whence is EINVAL", 0, 9, -eINVAL},
	}
	for _, tc := range tests {
		if _, r := call(sysLseek, fd, tc.off, tc.whence); r != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, r, tc.want)
		}
	}
	if _, r := call(sysLseek, 1, 0, seekSet); r != -eSPIPE {
		t.Errorf("lseek on the console: %d, want -ESPIPE", r)
	}
}

func TestGetdentsListsDotDotDotAndChildrenInOrder(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv"))
	buf, b := k.at(0, 4096)
	_, r := call(sysGetdents64, fd, buf, 4096)
	if r <= 0 {
		t.Fatalf("getdents64: %d", r)
	}
	got := decodeDirents(b[:r])
	want := []struct {
		name string
		typ  uint8
	}{{".", dtDir}, {"..", dtDir}, {"big.bin", dtReg}, {"css", dtDir}, {"empty", dtDir}, {"index.html", dtReg}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i, w := range want {
		if got[i].name != w.name || got[i].typ != w.typ || got[i].ino == 0 {
			t.Errorf("entry %d: %+v, want %s type %d and an inode", i, got[i], w.name, w.typ)
		}
	}
	// The inode of a child is what fstat of it says.
	child := k.mustOpen(t, "/srv/index.html")
	if st := k.fstat(t, child); st.ino != got[5].ino {
		t.Errorf("index.html: getdents64 inode %d, fstat %d", got[5].ino, st.ino)
	}
	if _, r := call(sysGetdents64, fd, buf, 4096); r != 0 {
		t.Errorf("getdents64 at the end: %d, want 0", r)
	}
	// Rewinding lists it again.
	call(sysLseek, fd, 0, seekSet)
	if _, r := call(sysGetdents64, fd, buf, 4096); r <= 0 {
		t.Errorf("getdents64 after lseek 0: %d", r)
	}
}

func TestGetdentsWithASmallBufferReturnsEINVAL(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv"))
	buf, _ := k.at(0, 4096)
	if _, r := call(sysGetdents64, fd, buf, 16); r != -eINVAL {
		t.Errorf("getdents64 with 16 bytes: %d, want -EINVAL", r)
	}
}

func TestGetdentsResumesWhereTheBufferFilled(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv"))
	buf, b := k.at(0, 4096)
	var names []string
	for i := 0; i < 10; i++ {
		_, r := call(sysGetdents64, fd, buf, 32) // room for one short entry
		if r < 0 {
			// "index.html" needs 32 bytes, the longest here.
			t.Fatalf("getdents64: %d", r)
		}
		if r == 0 {
			break
		}
		for _, d := range decodeDirents(b[:r]) {
			names = append(names, d.name)
		}
	}
	if got := strings.Join(names, " "); got != ". .. big.bin css empty index.html" {
		t.Errorf("listed one at a time: %s", got)
	}
}

func TestGetdentsOfAFileIsENOTDIR(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv/index.html"))
	buf, _ := k.at(0, 4096)
	if _, r := call(sysGetdents64, fd, buf, 4096); r != -eNOTDIR {
		t.Errorf("getdents64 of a file: %d, want -ENOTDIR", r)
	}
	if _, r := call(sysGetdents64, 1, buf, 4096); r != -eNOTDIR {
		t.Errorf("getdents64 of the console: %d, want -ENOTDIR", r)
	}
}

func TestOpenFollowsLinuxSemantics(t *testing.T) {
	const (
		wronly = 1
		rdwr   = 2
	)
	tests := []struct {
		name  string
		path  string
		flags uint64
		want  int64 // 0: success
	}{
		{"a file read-only", "/srv/index.html", 0, 0},
		{"with O_CLOEXEC and O_NONBLOCK", "/srv/index.html", 0x80000 | oNonblock, 0},
		{"a directory with O_DIRECTORY", "/srv", oDirectory, 0},
		{"a relative path starts at the root", "srv/css/site.css", 0, 0},
		{"dot and dot-dot", "/srv/./css/../../etc/hosts", 0, 0},
		{"dot-dot above the root stays there", "/../../srv", 0, 0},
		{"repeated slashes", "//srv///index.html", 0, 0},
		{"a trailing slash after a directory", "/srv/", 0, 0},
		{"the root", "/", 0, 0},
		{"write-only is EROFS", "/srv/index.html", wronly, -eROFS},
		{"read-write is EROFS", "/srv/index.html", rdwr, -eROFS},
		{"O_TRUNC is EROFS", "/srv/index.html", oTrunc, -eROFS},
		{"O_CREAT of a new name is EROFS", "/srv/new.txt", oCreat | wronly, -eROFS},
		{"O_CREAT in a missing directory is ENOENT", "/nodir/new.txt", oCreat | wronly, -eNOENT},
		{"O_CREAT|O_EXCL of an existing name is EEXIST", "/srv/index.html", oCreat | oExcl | wronly, -eEXIST},
		{"O_CREAT of an existing file read-only opens it", "/srv/index.html", oCreat, 0},
		{"a directory for writing is EISDIR", "/srv", wronly, -eISDIR},
		{"O_DIRECTORY on a file is ENOTDIR", "/srv/index.html", oDirectory, -eNOTDIR},
		{"a file used as a directory is ENOTDIR", "/srv/index.html/x", 0, -eNOTDIR},
		{"a trailing slash after a file is ENOTDIR", "/srv/index.html/", 0, -eNOTDIR},
		{"a missing name is ENOENT", "/srv/missing", 0, -eNOENT},
		{"a missing directory is ENOENT", "/missing/x", 0, -eNOENT},
		{"the empty path is ENOENT", "", 0, -eNOENT},
		{"a name over 255 bytes is ENAMETOOLONG", "/srv/" + strings.Repeat("a", 256), 0, -eNAMETOOLONG},
		{"the runtime's /sys probe is ENOENT", "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", 0, -eNOENT},
		{"O_TMPFILE is EROFS", "/srv", 0x410000 | rdwr, -eROFS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := setupFS(t, "")
			r := k.open(tc.path, tc.flags)
			if tc.want == 0 {
				if r < 3 {
					t.Errorf("open %q: %d, want an fd", tc.path, r)
				} else if fileFor(r).kind != fileRegular {
					t.Errorf("fd %d has kind %d", r, fileFor(r).kind)
				}
				return
			}
			if r != tc.want {
				t.Errorf("open %q: %d, want %d", tc.path, r, tc.want)
			}
		})
	}
}

func TestOpenatRelativeToADirectoryFD(t *testing.T) {
	k := setupFS(t, "")
	dir := uint64(k.mustOpen(t, "/srv/css"))
	if _, r := call(sysOpenat, dir, k.cpath(0, "site.css"), 0); r < 3 {
		t.Errorf("openat relative to /srv/css: %d", r)
	} else if got := k.readAll(t, r, 64); string(got) != "body{}" {
		t.Errorf("read %q", got)
	}
	if _, r := call(sysOpenat, dir, k.cpath(0, "../index.html"), 0); r < 3 {
		t.Errorf("openat ../index.html: %d", r)
	}
	// An absolute path ignores dirfd, even a bad one.
	if _, r := call(sysOpenat, 60, k.cpath(0, "/srv/index.html"), 0); r < 3 {
		t.Errorf("openat of an absolute path with a bad dirfd: %d", r)
	}
	file := uint64(k.mustOpen(t, "/srv/index.html"))
	if _, r := call(sysOpenat, file, k.cpath(0, "x"), 0); r != -eNOTDIR {
		t.Errorf("openat relative to a file: %d, want -ENOTDIR", r)
	}
	if _, r := call(sysOpenat, 60, k.cpath(0, "x"), 0); r != -eBADF {
		t.Errorf("openat relative to a closed fd: %d, want -EBADF", r)
	}
}

func TestReadAndWriteOfTheWrongKind(t *testing.T) {
	k := setupFS(t, "")
	dir := uint64(k.mustOpen(t, "/srv"))
	if _, r := call(sysRead, dir, k.userBase, 64); r != -eISDIR {
		t.Errorf("read of a directory: %d, want -EISDIR", r)
	}
	file := uint64(k.mustOpen(t, "/srv/index.html"))
	if _, r := call(sysWrite, file, k.userBase, 4); r != -eBADF {
		t.Errorf("write to a read-only fd: %d, want -EBADF", r)
	}
	if _, r := call(sysRead, file, 0x10, 4); r != -eFAULT {
		t.Errorf("read into an unmapped buffer: %d, want -EFAULT", r)
	}
}

func TestStatOfPathsAndFDs(t *testing.T) {
	k := setupFS(t, "")
	buf, b := k.at(8192, statSize)
	stat := func(dirfd int64, path string, flags uint64) (stat, int64) {
		_, r := call(sysNewfstatat, uint64(dirfd), k.cpath(0, path), buf, flags)
		return k.decodeStat(b), r
	}
	if st, r := stat(atFDCWD, "/srv", 0); r != 0 || st.mode != sIFDIR|0o755 || st.nlink != 4 {
		t.Errorf("stat /srv: %d %+v, want a directory with nlink 2+2 subdirectories", r, st)
	}
	if st, r := stat(atFDCWD, "/bin/tool", atSymlinkNofollow); r != 0 || st.mode != sIFREG|0o755 || st.size != 2 {
		t.Errorf("lstat /bin/tool: %d %+v", r, st)
	}
	fd := k.mustOpen(t, "/srv/index.html")
	if st, r := stat(fd, "", atEmptyPath); r != 0 || st.size != 15 {
		t.Errorf("newfstatat(fd, \"\", AT_EMPTY_PATH): %d %+v, want the fd's file", r, st)
	}
	if _, r := stat(fd, "", 0); r != -eNOENT {
		t.Errorf("an empty path without AT_EMPTY_PATH: %d, want -ENOENT", r)
	}
	if st, r := stat(atFDCWD, "", atEmptyPath); r != 0 || st.mode&sIFDIR == 0 {
		t.Errorf("AT_FDCWD with AT_EMPTY_PATH: %d %+v, want the root", r, st)
	}
	if _, r := stat(atFDCWD, "/srv", 0x4); r != -eINVAL {
		t.Errorf("unknown flags: %d, want -EINVAL", r)
	}
	if _, r := stat(atFDCWD, "/nope", 0); r != -eNOENT {
		t.Errorf("stat of a missing path: %d", r)
	}
	if _, r := call(sysStat, k.cpath(0, "/srv/css/site.css"), buf); r != 0 || k.decodeStat(b).size != 6 {
		t.Errorf("stat(2): %d", r)
	}
	if st := k.fstat(t, 1); st.mode != sIFCHR|0o620 {
		t.Errorf("fstat of the console: mode %o, want a character device", st.mode)
	}
}

func TestReadlinkAccessAndGetcwd(t *testing.T) {
	k := setupFS(t, "")
	if _, r := call(sysReadlinkat, uint64(atFDCWD&(1<<64-1)), k.cpath(0, "/srv/index.html"), k.userBase+256, 64); r != -eINVAL {
		t.Errorf("readlink of a file: %d, want -EINVAL (not a link)", r)
	}
	if _, r := call(sysReadlink, k.cpath(0, "/proc/self/exe"), k.userBase+256, 64); r != -eNOENT {
		t.Errorf("readlink /proc/self/exe: %d, want -ENOENT", r)
	}
	access := []struct {
		path string
		mode uint64
		want int64
	}{
		{"/srv/index.html", 0, 0},
		{"/srv/index.html", 4, 0},
		{"/srv/index.html", 2, -eROFS},
		{"/srv/index.html", 1, -eACCES},
		{"/bin/tool", 1, 0},
		{"/missing", 0, -eNOENT},
	}
	for _, tc := range access {
		if _, r := call(sysAccess, k.cpath(0, tc.path), tc.mode); r != tc.want {
			t.Errorf("access(%s, %d): %d, want %d", tc.path, tc.mode, r, tc.want)
		}
	}
	buf, b := k.at(512, 8)
	if _, r := call(sysGetcwd, buf, 8); r != 2 || string(b[:2]) != "/\x00" {
		t.Errorf("getcwd: %d %q", r, b[:2])
	}
	if _, r := call(sysGetcwd, buf, 1); r != -eRANGE {
		t.Errorf("getcwd into 1 byte: %d, want -ERANGE", r)
	}
}

func TestChdirMovesWhereRelativePathsStart(t *testing.T) {
	k := setupFS(t, "")
	buf, b := k.at(512, 64)
	getcwd := func() string {
		_, r := call(sysGetcwd, buf, 64)
		if r <= 0 {
			t.Fatalf("getcwd: %d", r)
		}
		return string(b[:r-1])
	}
	if _, r := call(sysChdir, k.cpath(0, "/srv/css")); r != 0 {
		t.Fatalf("chdir /srv/css: %d", r)
	}
	if got := getcwd(); got != "/srv/css" {
		t.Errorf("getcwd after chdir: %q", got)
	}
	if fd := k.open("site.css", 0); fd < 3 {
		t.Errorf("open of a relative path after chdir: %d", fd)
	}
	if _, r := call(sysGetcwd, buf, 8); r != -eRANGE {
		t.Errorf("getcwd into too small a buffer: %d, want -ERANGE", r)
	}
	if _, r := call(sysChdir, k.cpath(0, "/srv/index.html")); r != -eNOTDIR {
		t.Errorf("chdir to a file: %d, want -ENOTDIR", r)
	}
	if _, r := call(sysChdir, k.cpath(0, "nowhere")); r != -eNOENT {
		t.Errorf("chdir to a missing name: %d, want -ENOENT", r)
	}
	root := uint64(k.mustOpen(t, "/"))
	if _, r := call(sysFchdir, root); r != 0 || getcwd() != "/" {
		t.Errorf("fchdir to the root: %d, fsCwd %q", r, getcwd())
	}
	if _, r := call(sysFchdir, 1); r != -eNOTDIR {
		t.Errorf("fchdir to the console: %d, want -ENOTDIR", r)
	}
}

func TestRegularFilesAreNotPollable(t *testing.T) {
	k := setupFS(t, "")
	fd := uint64(k.mustOpen(t, "/srv/index.html"))
	_, ep := call(sysEpollCreate1, 0)
	ev, _ := k.at(0, epollEvtSize)
	if _, r := call(sysEpollCtl, uint64(ep), epollCtlAdd, fd, ev); r != -ePERM {
		t.Errorf("epoll_ctl ADD of a regular file: %d, want -EPERM (Go then reads it without the poller)", r)
	}
	if _, r := call(sysFcntl, fd, fGetFL); r != oLargefile {
		t.Errorf("F_GETFL: %#x, want O_RDONLY|O_LARGEFILE", r)
	}
}

func TestDeviceFilesStillOpen(t *testing.T) {
	k := setupFS(t, "")
	fd := k.open("/dev/irq/"+fsItoa(vectorMSIFirst), 0)
	if fd < 3 || fileFor(fd) == nil || fileFor(fd).kind != fileIRQ {
		t.Errorf("open /dev/irq/%d: %d", vectorMSIFirst, fd)
	}
}

func fsItoa(v int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		if v /= 10; v == 0 {
			return string(b[i:])
		}
	}
}

func TestKernelFilesStartFromTheCommandLine(t *testing.T) {
	k := setupFS(t, "console=ttyS0 dns=10.0.2.3,2001:db8::53 ip=10.0.2.15/24 gw=10.0.2.2 dns=bad;word")
	fd := k.mustOpen(t, "/etc/resolv.conf")
	rc := string(k.readAll(t, fd, 4096))
	if !strings.Contains(rc, "nameserver 10.0.2.3\nnameserver 2001:db8::53\n") || strings.Contains(rc, "bad") {
		t.Errorf("resolv.conf:\n%s", rc)
	}
	fd = k.mustOpen(t, "/etc/hosts")
	hosts := string(k.readAll(t, fd, 4096))
	if !strings.Contains(hosts, "127.0.0.1\tlocalhost\n") || !strings.Contains(hosts, "10.0.2.15\tgovirtio\n") {
		t.Errorf("hosts:\n%s", hosts)
	}
	fd = k.mustOpen(t, "/etc/nsswitch.conf")
	if got := string(k.readAll(t, fd, 4096)); got != "hosts: files dns\n" {
		t.Errorf("nsswitch.conf: %q", got)
	}
	// Go's net reads its listen backlog here: Linux's 4096, not its
	// fallback of 128.
	fd = k.mustOpen(t, "/proc/sys/net/core/somaxconn")
	if got := string(k.readAll(t, fd, 4096)); got != "4096\n" {
		t.Errorf("somaxconn: %q", got)
	}
}

func TestSetKernelFileReplacesResolvConfAndMovesItsTime(t *testing.T) {
	k := setupFS(t, "")
	fd := k.mustOpen(t, "/etc/resolv.conf")
	before := k.fstat(t, fd)
	text := "nameserver 192.0.2.1\n"
	buf := k.cpath(0, text)
	if _, r := call(SysSetKernelFile, fsimage.SlotResolvConf, buf, uint64(len(text))); r != 0 {
		t.Fatalf("SysSetKernelFile: %d", r)
	}
	after := k.fstat(t, fd)
	if after.size != uint64(len(text)) {
		t.Errorf("size %d after the change, want %d", after.size, len(text))
	}
	// fstat's times are whole seconds here; compare the kernel's own.
	if kernelFiles[fsimage.SlotResolvConf].mtime <= int64(before.mtime)*1e9-1e9 {
		t.Errorf("modification time did not move")
	}
	// An fd opened before reads the new contents from its offset.
	if got := string(k.readAll(t, fd, 4096)); got != text {
		t.Errorf("read %q", got)
	}
	if _, r := call(SysSetKernelFile, fsimage.Slots, buf, 1); r != -eINVAL {
		t.Errorf("an unknown slot: %d, want -EINVAL", r)
	}
	if _, r := call(SysSetKernelFile, fsimage.SlotHosts, buf, kernelFileMax+1); r != -eINVAL {
		t.Errorf("too long: %d, want -EINVAL", r)
	}
}

// The file system calls run in the kernel, which must not allocate.
func TestFileSystemCallsDoNotAllocate(t *testing.T) {
	k := setupFS(t, "dns=10.0.2.3")
	path := k.cpath(0, "/srv/css/site.css")
	dir := k.cpath(64, "/srv")
	buf, _ := k.at(4096, 4096)
	// The handlers directly: call's Frame is the test's allocation.
	allocs := testing.AllocsPerRun(50, func() {
		fd := fsOpenat(atFDCWD, path, 0)
		sysReadFD(fd, buf, 4096)
		fsFstat(fd, buf)
		closeFD(fd)
		fd = fsOpenat(atFDCWD, dir, oDirectory)
		fsGetdents(fd, buf, 4096)
		closeFD(fd)
		fsFstatat(atFDCWD, path, buf, 0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round", allocs)
	}
}
