package fsimage

import "errors"

// Format constants (see the package documentation).
const (
	// Magic starts every image.
	Magic = "GVFSIMG1"
	// HeaderSize and NodeSize are the sizes of the header and of one entry
	// of the node table.
	HeaderSize = 32
	NodeSize   = 40
	// MaxName is the longest name a node may have (Linux's NAME_MAX).
	MaxName = 255
)

// Node kinds.
const (
	KindDir    = 1 // a directory
	KindFile   = 2 // a regular file whose bytes are in the image
	KindKernel = 3 // a regular file whose bytes the kernel holds (see Slot*)
)

// Slots of the kernel's own files (KindKernel nodes).
const (
	// SlotResolvConf is /etc/resolv.conf: the name servers from the
	// command line's dns= word or the DHCP lease.
	SlotResolvConf = 0
	// SlotHosts is /etc/hosts: localhost, and the guest's own name and
	// address once known.
	SlotHosts = 1
	// Slots is how many there are.
	Slots = 2
)

// Node is one entry of the node table, decoded. It holds no pointers.
type Node struct {
	Kind    uint8
	Slot    uint8  // KindKernel: which kernel file
	Perm    uint16 // permission bits
	Parent  uint32 // the directory holding it (the root's is itself)
	NameOff uint32 // where its name is in the image
	NameLen uint32
	// First and Count are a directory's children: nodes First to
	// First+Count-1.
	First, Count uint64
	// Off and Size are a file's data: bytes Off to Off+Size-1 of the
	// image (KindFile only).
	Off, Size uint64
	Mtime     int64 // seconds since 1970
}

// IsDir reports whether n is a directory.
func (n Node) IsDir() bool { return n.Kind == KindDir }

// Errors from Check, one for each way an image can be malformed. They are
// values made once, so that Check, which the kernel runs, never allocates.
var (
	ErrMagic    = errors.New("fsimage: bad magic or header")
	ErrLength   = errors.New("fsimage: image length does not match its header")
	ErrKind     = errors.New("fsimage: node of unknown kind")
	ErrName     = errors.New("fsimage: name out of bounds or invalid")
	ErrChildren = errors.New("fsimage: directory children out of order or out of bounds")
	ErrData     = errors.New("fsimage: file data out of bounds")
	ErrParent   = errors.New("fsimage: node not among its parent's children")
	ErrRoot     = errors.New("fsimage: node 0 is not the root directory")
)

// le32 and le64 read little-endian numbers from a string without
// converting it (encoding/binary wants a []byte).
func le32(s string, off uint64) uint32 {
	return uint32(s[off]) | uint32(s[off+1])<<8 | uint32(s[off+2])<<16 | uint32(s[off+3])<<24
}

func le64(s string, off uint64) uint64 {
	return uint64(le32(s, off)) | uint64(le32(s, off+4))<<32
}

// Count returns the number of nodes of a checked image.
func Count(img string) uint32 { return le32(img, 8) }

// At decodes node i of a checked image (i < Count(img)).
func At(img string, i uint32) Node {
	o := HeaderSize + uint64(i)*NodeSize
	n := Node{
		Kind:    img[o],
		Slot:    img[o+1],
		Perm:    uint16(img[o+2]) | uint16(img[o+3])<<8,
		Parent:  le32(img, o+4),
		NameOff: le32(img, o+8),
		NameLen: le32(img, o+12),
		Mtime:   int64(le64(img, o+32)),
	}
	a, b := le64(img, o+16), le64(img, o+24)
	if n.Kind == KindDir {
		n.First, n.Count = a, b
	} else {
		n.Off, n.Size = a, b
	}
	return n
}

// Name returns n's name (a substring of img: nothing is copied).
func Name(img string, n Node) string {
	return img[n.NameOff : n.NameOff+n.NameLen]
}

// Data returns the contents of a KindFile node (a substring of img).
func Data(img string, n Node) string {
	return img[n.Off : n.Off+n.Size]
}

// Lookup finds the child called name of directory dir in a checked
// image, by binary search over its sorted children.
func Lookup(img string, dir Node, name []byte) (uint32, bool) {
	lo, hi := dir.First, dir.First+dir.Count
	for lo < hi {
		mid := lo + (hi-lo)/2
		c := compare(Name(img, At(img, uint32(mid))), name)
		switch {
		case c == 0:
			return uint32(mid), true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false
}

// compare orders a and b bytewise, as strings.Compare does, without
// converting b to a string.
func compare(a string, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// validName reports whether s may name a node.
func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxName || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return false
		}
	}
	return true
}

// Check verifies that img is a well-formed image, so that the other
// functions may read it without bounds surprises: every offset and length
// inside the image, every directory's children after it, consecutive,
// strictly sorted and naming it as their parent. It does not allocate.
func Check(img string) error {
	n := uint64(len(img))
	if n < HeaderSize || img[:len(Magic)] != Magic || le32(img, 12) != 0 || le64(img, 16) != 0 {
		return ErrMagic
	}
	if le64(img, 24) != n {
		return ErrLength
	}
	count := uint64(le32(img, 8))
	if count == 0 || count > (n-HeaderSize)/NodeSize {
		return ErrLength
	}
	// First every name, so that the second pass may compare any two.
	for i := uint64(0); i < count; i++ {
		nd := At(img, uint32(i))
		if uint64(nd.NameOff)+uint64(nd.NameLen) > n || nd.Perm&^0o777 != 0 || uint64(nd.Parent) >= count {
			return ErrName
		}
	}
	for i := uint64(0); i < count; i++ {
		nd := At(img, uint32(i))
		if i == 0 {
			if nd.Kind != KindDir || nd.Parent != 0 || nd.NameLen != 0 {
				return ErrRoot
			}
		} else {
			if !validName(Name(img, nd)) {
				return ErrName
			}
			p := At(img, nd.Parent)
			if !p.IsDir() || i < p.First || i >= p.First+p.Count {
				return ErrParent
			}
		}
		switch nd.Kind {
		case KindDir:
			if nd.First <= i && nd.Count > 0 || nd.Count > count || nd.First > count-nd.Count {
				return ErrChildren
			}
			for c := nd.First; c < nd.First+nd.Count; c++ {
				if At(img, uint32(c)).Parent != uint32(i) {
					return ErrParent
				}
				if c > nd.First && Name(img, At(img, uint32(c-1))) >= Name(img, At(img, uint32(c))) {
					return ErrChildren
				}
			}
		case KindFile:
			if nd.Off > n || nd.Size > n-nd.Off {
				return ErrData
			}
		case KindKernel:
			if nd.Slot >= Slots || nd.Off != 0 || nd.Size != 0 {
				return ErrKind
			}
		default:
			return ErrKind
		}
	}
	return nil
}
