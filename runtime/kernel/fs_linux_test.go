//go:build linux

package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govirtio/govirtio/runtime/fsimage"
	"golang.org/x/sys/unix"
)

// Path resolution is checked against Linux itself: the test tree is
// copied to a host directory and each path opened there with openat2 and
// RESOLVE_IN_ROOT (which keeps "/" and ".." inside that directory, as the
// image's root is for the kernel), and in the kernel; both must fail with
// the same errno, or open files of the same type and size. Only read-only
// opens are compared: the host's copy is writable.

// mirror copies the kernel's tree (as setupFS made it, kernel files with
// their current contents) to a host directory and returns it.
func mirror(t testing.TB, k *fsKernel) string {
	t.Helper()
	root := t.TempDir()
	fsInit()
	tr := fsTree()
	var path func(i uint32) string
	path = func(i uint32) string {
		if i == 0 {
			return root
		}
		nd := fsimage.At(tr, i)
		return filepath.Join(path(nd.Parent), fsimage.Name(tr, nd))
	}
	for i := uint32(1); i < fsimage.Count(tr); i++ {
		nd := fsimage.At(tr, i)
		var err error
		switch {
		case nd.IsDir():
			err = os.Mkdir(path(i), 0o755)
		default:
			s, b := fsContent(tr, nd)
			err = os.WriteFile(path(i), append([]byte(s), b...), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// openBoth opens p read-only (with extra flags) on the host mirror and in
// the kernel and says how they differ, or "" when they agree.
func openBoth(t testing.TB, k *fsKernel, rootfd int, p string, flags uint64) string {
	hfd, herr := unix.Openat2(rootfd, p, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | flags, Resolve: unix.RESOLVE_IN_ROOT})
	kfd := k.open(p, flags)
	if herr != nil {
		var errno syscall.Errno
		if !errors.As(herr, &errno) {
			t.Fatalf("openat2 %q: %v", p, herr)
		}
		if kfd != -int64(errno) {
			return "Linux says " + errno.Error() + ", the kernel " + errName(kfd)
		}
		return ""
	}
	defer unix.Close(hfd)
	if kfd < 0 {
		return "Linux opens it, the kernel says " + errName(kfd)
	}
	defer closeFD(kfd)
	var st unix.Stat_t
	if err := unix.Fstat(hfd, &st); err != nil {
		t.Fatal(err)
	}
	ks := k.fstat(t.(*testing.T), kfd)
	if st.Mode&unix.S_IFMT != ks.mode&unix.S_IFMT || (st.Mode&unix.S_IFMT == unix.S_IFREG && uint64(st.Size) != ks.size) {
		return "different files"
	}
	return ""
}

func errName(r int64) string {
	if r >= 0 {
		return "an fd"
	}
	return syscall.Errno(-r).Error()
}

// resolutionSeeds are paths whose resolution has a rule of its own.
var resolutionSeeds = []string{
	"/", "", ".", "..", "/..", "/../..", "srv", "/srv/", "//srv//index.html", "/srv/./css/../index.html",
	"srv/css/site.css", "/srv/index.html/", "/srv/index.html/.", "/srv/index.html/..", "/srv/missing",
	"/missing/x", "/srv/empty/..", "/etc/hosts", "/etc/../../etc/resolv.conf", "/srv/css/",
	"/" + strings.Repeat("a", 255), "/" + strings.Repeat("a", 256), "/srv/" + strings.Repeat("b", 300) + "/x",
	"/bin/tool/", "./srv/../bin/tool", "/srv/big.bin//",
}

func TestPathResolutionAgreesWithLinux(t *testing.T) {
	k := setupFS(t, "dns=10.0.2.3")
	root := mirror(t, k)
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)
	if _, err := unix.Openat2(rootfd, ".", &unix.OpenHow{Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_IN_ROOT}); errors.Is(err, unix.ENOSYS) {
		t.Skip("no openat2 on this host")
	}
	for _, p := range resolutionSeeds {
		for _, flags := range []uint64{0, oDirectory} {
			if d := openBoth(t, k, rootfd, p, flags); d != "" {
				t.Errorf("open %q flags %#x: %s", p, flags, d)
			}
		}
	}
}

// pathWords are what fuzzed paths are made of: the tree's names, names it
// lacks, "." and "..".
var pathWords = []string{"srv", "css", "site.css", "index.html", "big.bin", "empty", "etc", "hosts", "bin", "tool", "..", ".", "", "x"}

// fuzzPath builds a path from picks: each byte picks a word, its top bit
// doubles the slash before it; an odd first byte makes it absolute.
func fuzzPath(picks []byte) string {
	var b strings.Builder
	for i, c := range picks {
		if i > 0 || c&1 != 0 {
			b.WriteByte('/')
		}
		if c&0x80 != 0 {
			b.WriteByte('/')
		}
		b.WriteString(pathWords[int(c>>1&0x3f)%len(pathWords)])
	}
	return b.String()
}

// Every directory lists the names and types Linux lists for its copy
// (Linux's order is its own: the sets are compared).
func TestDirectoryListingsAgreeWithLinux(t *testing.T) {
	k := setupFS(t, "")
	root := mirror(t, k)
	buf, b := k.at(0, 8192)
	for _, dir := range []string{"/", "/srv", "/srv/css", "/srv/empty", "/etc", "/bin"} {
		host := map[string]uint8{".": dtDir, "..": dtDir}
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			host[e.Name()] = map[bool]uint8{true: dtDir, false: dtReg}[e.IsDir()]
		}
		fd := k.mustOpen(t, dir)
		_, n := call(sysGetdents64, uint64(fd), buf, 8192)
		if n < 0 {
			t.Fatalf("getdents64 %s: %d", dir, n)
		}
		got := map[string]uint8{}
		for _, d := range decodeDirents(b[:n]) {
			got[d.name] = d.typ
		}
		if len(got) != len(host) {
			t.Errorf("%s: the kernel lists %v, Linux %v", dir, got, host)
			continue
		}
		for name, typ := range host {
			if got[name] != typ {
				t.Errorf("%s: %q has type %d in the kernel, %d in Linux", dir, name, got[name], typ)
			}
		}
		closeFD(fd)
	}
}

// FuzzPathResolutionAgreesWithLinux: any path (a raw string, or one built
// from the tree's names and "." ".." "/") resolves as Linux resolves it.
func FuzzPathResolutionAgreesWithLinux(f *testing.F) {
	for _, p := range resolutionSeeds {
		f.Add(p, []byte(nil), false)
	}
	f.Add("", []byte{1, 2, 4, 1 << 1, 21 << 1}, false)
	f.Fuzz(func(t *testing.T, raw string, picks []byte, dir bool) {
		p := raw + fuzzPath(picks)
		if strings.IndexByte(p, 0) >= 0 || len(p) > 3000 {
			return
		}
		k := setupFS(t, "")
		root := mirror(t, k)
		rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(rootfd)
		flags := uint64(0)
		if dir {
			flags = oDirectory
		}
		if d := openBoth(t, k, rootfd, p, flags); d != "" {
			t.Errorf("open %q flags %#x: %s", p, flags, d)
		}
	})
}
