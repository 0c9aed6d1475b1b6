package fsimage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Writer builds an image on the host. The zero value is a tree holding
// only the root directory. Later additions replace earlier ones of the
// same path, so a program's own /etc/hosts, packed after AddStandard's,
// is the one served.
type Writer struct {
	root *wnode
}

// wnode is a node being built.
type wnode struct {
	kind     uint8
	slot     uint8
	perm     uint16
	mtime    int64
	data     []byte
	children map[string]*wnode
}

// The standard files AddStandard writes.
const (
	// StandardNSSwitch is /etc/nsswitch.conf: Go's resolver reads
	// /etc/hosts before asking DNS.
	StandardNSSwitch = "hosts: files dns\n"
	// StandardPasswd and StandardGroup name the one user and group the
	// program runs as (uid and gid 0), for os/user.
	StandardPasswd = "root:x:0:0:root:/:/nonexistent\n"
	StandardGroup  = "root:x:0:\n"
	// StandardSomaxconn is /proc/sys/net/core/somaxconn, which Go's net
	// reads as the listen backlog: Linux's default since 5.4. Without it
	// Go uses 128, which a burst of connections overflows, and netstack
	// loses connections whose handshake ends while the queue is full.
	StandardSomaxconn = "4096\n"
)

// AddStandard adds what every image serves: /etc/resolv.conf and
// /etc/hosts (kernel files, see SlotResolvConf and SlotHosts),
// /etc/nsswitch.conf, /etc/passwd, /etc/group and
// /proc/sys/net/core/somaxconn.
func (w *Writer) AddStandard() error {
	if err := w.AddKernelFile("/etc/resolv.conf", SlotResolvConf); err != nil {
		return err
	}
	if err := w.AddKernelFile("/etc/hosts", SlotHosts); err != nil {
		return err
	}
	for _, f := range []struct{ name, data string }{
		{"/etc/nsswitch.conf", StandardNSSwitch},
		{"/etc/passwd", StandardPasswd},
		{"/etc/group", StandardGroup},
		{"/proc/sys/net/core/somaxconn", StandardSomaxconn},
	} {
		if err := w.AddFile(f.name, []byte(f.data), 0o644, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// AddFile adds a regular file at name (absolute or relative to the root),
// creating the directories above it.
func (w *Writer) AddFile(name string, data []byte, perm fs.FileMode, mtime time.Time) error {
	n, err := w.leaf(name, KindFile)
	if err != nil {
		return err
	}
	n.perm, n.mtime, n.data = uint16(perm.Perm()), unixTime(mtime), data
	return nil
}

// AddKernelFile adds a file whose contents the kernel provides (slot is
// one of the Slot constants).
func (w *Writer) AddKernelFile(name string, slot uint8) error {
	if slot >= Slots {
		return fmt.Errorf("fsimage: %s: no kernel file slot %d", name, slot)
	}
	n, err := w.leaf(name, KindKernel)
	if err != nil {
		return err
	}
	n.slot, n.perm = slot, 0o644
	return nil
}

// AddDir adds a directory (and those above it), or sets the permissions
// and time of one already there.
func (w *Writer) AddDir(name string, perm fs.FileMode, mtime time.Time) error {
	n, err := w.dir(name)
	if err != nil {
		return err
	}
	n.perm, n.mtime = uint16(perm.Perm()), unixTime(mtime)
	return nil
}

// AddFS adds the tree of fsys under the directory at: its directories and
// regular files with their permission bits and times. A symbolic link is
// followed when it leads to a regular file; one that leads to a directory,
// and any other kind of file (device, socket, pipe), is an error naming it.
func (w *Writer) AddFS(fsys fs.FS, at string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dest := path.Join(at, p)
		info, err := fs.Stat(fsys, p) // follows a link
		if err != nil {
			return fmt.Errorf("fsimage: %s: %w", p, err)
		}
		switch {
		case info.IsDir() && d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("fsimage: %s: a symbolic link to a directory is not packed", p)
		case info.IsDir():
			return w.AddDir(dest, info.Mode(), info.ModTime())
		case info.Mode().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return fmt.Errorf("fsimage: %w", err)
			}
			return w.AddFile(dest, data, info.Mode(), info.ModTime())
		}
		return fmt.Errorf("fsimage: %s: %v is neither a regular file nor a directory", p, info.Mode().Type())
	})
}

// unixTime is t in seconds since 1970, 0 for the zero Time.
func unixTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// split cleans name into its components; the root has none.
func split(name string) ([]string, error) {
	clean := strings.Trim(path.Clean("/"+name), "/")
	if clean == "" {
		return nil, nil
	}
	parts := strings.Split(clean, "/")
	for _, p := range parts {
		if !validName(p) {
			return nil, fmt.Errorf("fsimage: %q: invalid name %q", name, p)
		}
	}
	return parts, nil
}

// dir returns the directory at name, creating it and those above it.
func (w *Writer) dir(name string) (*wnode, error) {
	parts, err := split(name)
	if err != nil {
		return nil, err
	}
	if w.root == nil {
		w.root = newDir()
	}
	n := w.root
	for i, p := range parts {
		c := n.children[p]
		if c == nil {
			c = newDir()
			n.children[p] = c
		} else if c.kind != KindDir {
			return nil, fmt.Errorf("fsimage: %s: /%s is a file", name, strings.Join(parts[:i+1], "/"))
		}
		n = c
	}
	return n, nil
}

// leaf returns a fresh node of kind at name, replacing a file already
// there; the directories above it are created.
func (w *Writer) leaf(name string, kind uint8) (*wnode, error) {
	parts, err := split(name)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("fsimage: %q: the root is a directory", name)
	}
	parent, err := w.dir(strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	if c := parent.children[last]; c != nil && c.kind == KindDir {
		return nil, fmt.Errorf("fsimage: %s: is a directory", name)
	}
	n := &wnode{kind: kind}
	parent.children[last] = n
	return n, nil
}

func newDir() *wnode {
	return &wnode{kind: KindDir, perm: 0o755, children: map[string]*wnode{}}
}

// errTooLarge is returned for trees whose offsets do not fit the format.
var errTooLarge = errors.New("fsimage: tree too large for the format")

// Bytes encodes the tree.
func (w *Writer) Bytes() ([]byte, error) {
	if w.root == nil {
		w.root = newDir()
	}
	// Breadth-first order: each directory's children are consecutive.
	type entry struct {
		n      *wnode
		name   string
		parent int
	}
	order := []entry{{n: w.root}}
	first := map[int]int{} // directory index -> its first child's index
	for i := 0; i < len(order); i++ {
		n := order[i].n
		if n.kind != KindDir {
			continue
		}
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		first[i] = len(order)
		for _, name := range names {
			order = append(order, entry{n: n.children[name], name: name, parent: i})
		}
	}
	if len(order) > 1<<31 {
		return nil, errTooLarge
	}
	namesOff := uint64(HeaderSize + len(order)*NodeSize)
	var names []byte
	nameAt := make([]uint64, len(order))
	for i, e := range order {
		nameAt[i] = namesOff + uint64(len(names))
		names = append(names, e.name...)
	}
	dataOff := namesOff + uint64(len(names))
	if dataOff > 1<<32 {
		return nil, errTooLarge // name offsets are 32 bits
	}
	size := dataOff
	for _, e := range order {
		size += uint64(len(e.n.data))
	}
	out := make([]byte, dataOff, size)
	copy(out, Magic)
	binary.LittleEndian.PutUint32(out[8:], uint32(len(order)))
	binary.LittleEndian.PutUint64(out[24:], size)
	copy(out[namesOff:], names)
	for i, e := range order {
		b := out[HeaderSize+i*NodeSize:]
		b[0], b[1] = e.n.kind, e.n.slot
		binary.LittleEndian.PutUint16(b[2:], e.n.perm)
		binary.LittleEndian.PutUint32(b[4:], uint32(e.parent))
		binary.LittleEndian.PutUint32(b[8:], uint32(nameAt[i]))
		binary.LittleEndian.PutUint32(b[12:], uint32(len(e.name)))
		switch e.n.kind {
		case KindDir:
			binary.LittleEndian.PutUint64(b[16:], uint64(first[i]))
			binary.LittleEndian.PutUint64(b[24:], uint64(len(e.n.children)))
		case KindFile:
			binary.LittleEndian.PutUint64(b[16:], uint64(len(out)))
			binary.LittleEndian.PutUint64(b[24:], uint64(len(e.n.data)))
			out = append(out, e.n.data...)
		}
		binary.LittleEndian.PutUint64(b[32:], uint64(e.n.mtime))
	}
	return out, nil
}
