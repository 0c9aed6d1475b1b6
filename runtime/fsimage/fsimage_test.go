package fsimage

import (
	"encoding/binary"
	"errors"
	"testing"
	"testing/fstest"
	"time"
)

// build encodes a Writer or fails the test.
func build(t testing.TB, w *Writer) string {
	t.Helper()
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(string(b)); err != nil {
		t.Fatalf("Check of a written image: %v", err)
	}
	return string(b)
}

// walk resolves a slash-separated path from the root.
func walk(img string, p string) (Node, bool) {
	n := At(img, 0)
	for _, c := range splitTest(p) {
		i, ok := Lookup(img, n, []byte(c))
		if !ok {
			return Node{}, false
		}
		n = At(img, i)
	}
	return n, true
}

func splitTest(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if i > start {
				out = append(out, p[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func TestWrittenTreeReadsBack(t *testing.T) {
	mtime := time.Unix(1_700_000_000, 0)
	var w Writer
	if err := w.AddStandard(); err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"index.html":     {Data: []byte("<h1>hi</h1>"), Mode: 0o644, ModTime: mtime},
		"css/site.css":   {Data: []byte("body{}"), Mode: 0o600, ModTime: mtime},
		"css/empty.css":  {Data: nil, Mode: 0o644, ModTime: mtime},
		"empty":          {Mode: 0o755 | 0x80000000, ModTime: mtime}, // a directory
		"b/c/d/deep.txt": {Data: []byte("deep"), Mode: 0o444},
	}
	if err := w.AddFS(fsys, "/srv"); err != nil {
		t.Fatal(err)
	}
	img := build(t, &w)

	tests := []struct {
		path string
		kind uint8
		data string
		perm uint16
	}{
		{"srv/index.html", KindFile, "<h1>hi</h1>", 0o644},
		{"srv/css/site.css", KindFile, "body{}", 0o600},
		{"srv/css/empty.css", KindFile, "", 0o644},
		{"srv/b/c/d/deep.txt", KindFile, "deep", 0o444},
		{"srv/empty", KindDir, "", 0o755},
		{"etc/nsswitch.conf", KindFile, StandardNSSwitch, 0o644},
		{"etc/resolv.conf", KindKernel, "", 0o644},
	}
	for _, tc := range tests {
		n, ok := walk(img, tc.path)
		if !ok {
			t.Errorf("%s: not found", tc.path)
			continue
		}
		if n.Kind != tc.kind || n.Perm != tc.perm {
			t.Errorf("%s: kind %d perm %o, want %d %o", tc.path, n.Kind, n.Perm, tc.kind, tc.perm)
		}
		if n.Kind == KindFile && Data(img, n) != tc.data {
			t.Errorf("%s: data %q, want %q", tc.path, Data(img, n), tc.data)
		}
	}
	if n, _ := walk(img, "srv/index.html"); n.Mtime != mtime.Unix() {
		t.Errorf("mtime %d, want %d", n.Mtime, mtime.Unix())
	}
	if _, ok := walk(img, "srv/missing"); ok {
		t.Error("a missing name was found")
	}
	// A directory lists its children in order, each naming it as parent.
	css, _ := walk(img, "srv/css")
	var names []string
	for i := css.First; i < css.First+css.Count; i++ {
		names = append(names, Name(img, At(img, uint32(i))))
	}
	if len(names) != 2 || names[0] != "empty.css" || names[1] != "site.css" {
		t.Errorf("srv/css lists %q", names)
	}
	if n, _ := walk(img, "etc/hosts"); n.Slot != SlotHosts {
		t.Errorf("/etc/hosts slot %d", n.Slot)
	}
}

func TestLaterAdditionReplacesAFile(t *testing.T) {
	var w Writer
	if err := w.AddStandard(); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("/etc/hosts", []byte("10.0.0.1 db\n"), 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	img := build(t, &w)
	n, _ := walk(img, "etc/hosts")
	if n.Kind != KindFile || Data(img, n) != "10.0.0.1 db\n" {
		t.Errorf("/etc/hosts is kind %d, want the packed file", n.Kind)
	}
}

func TestConflictingPathsAreErrors(t *testing.T) {
	var w Writer
	if err := w.AddFile("/a/b", []byte("x"), 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("/a/b/c", nil, 0o644, time.Time{}); err == nil {
		t.Error("a file under a file was accepted")
	}
	if err := w.AddFile("/a", nil, 0o644, time.Time{}); err == nil {
		t.Error("a file over a directory was accepted")
	}
	if err := w.AddFile("/", nil, 0o644, time.Time{}); err == nil {
		t.Error("a file at the root was accepted")
	}
	if err := w.AddKernelFile("/k", Slots); err == nil {
		t.Error("a kernel file with no slot was accepted")
	}
}

func TestCheckRejectsMalformedImages(t *testing.T) {
	var w Writer
	if err := w.AddFile("/dir/f", []byte("data"), 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("/dir/g", []byte("more"), 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	good := build(t, &w)
	// Nodes: 0 root, 1 dir, 2 f, 3 g.
	node := func(i int) int { return HeaderSize + i*NodeSize }
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrMagic},
		{"too short", func(b []byte) []byte { return b[:10] }, ErrMagic},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrLength},
		{"more nodes than fit", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 1000); return b }, ErrLength},
		{"no nodes", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 0); return b }, ErrLength},
		{"unknown kind", func(b []byte) []byte { b[node(2)] = 9; return b }, ErrKind},
		{"kernel slot out of range", func(b []byte) []byte {
			b[node(2)], b[node(2)+1] = KindKernel, Slots
			binary.LittleEndian.PutUint64(b[node(2)+16:], 0)
			binary.LittleEndian.PutUint64(b[node(2)+24:], 0)
			return b
		}, ErrKind},
		{"name past the end", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[node(2)+12:], 1<<20); return b }, ErrName},
		{"name with a slash", func(b []byte) []byte {
			off := binary.LittleEndian.Uint32(b[node(2)+8:])
			b[off] = '/'
			return b
		}, ErrName},
		{"data past the end", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[node(3)+24:], 1<<40); return b }, ErrData},
		{"children out of order", func(b []byte) []byte {
			off := binary.LittleEndian.Uint32(b[node(3)+8:])
			b[off] = 'a' // "g" becomes "a", before "f"
			return b
		}, ErrChildren},
		{"directory pointing back", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[node(1)+16:], 0); return b }, ErrChildren},
		{"wrong parent", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[node(3)+4:], 0); return b }, ErrParent},
		{"root is a file", func(b []byte) []byte { b[node(0)] = KindFile; return b }, ErrRoot},
		{"permission beyond 0777", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[node(2)+2:], 0o4755); return b }, ErrName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate([]byte(good))
			if err := Check(string(b)); !errors.Is(err, tc.want) {
				t.Errorf("Check: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	var w Writer
	if err := w.AddStandard(); err != nil {
		t.Fatal(err)
	}
	img := build(t, &w)
	name := []byte("nsswitch.conf")
	if n := testing.AllocsPerRun(100, func() {
		if Check(img) != nil {
			panic("bad")
		}
		etc, _ := Lookup(img, At(img, 0), []byte("etc"))
		Lookup(img, At(img, etc), name)
	}); n != 0 {
		t.Errorf("Check and Lookup allocate %v times", n)
	}
}

// FuzzCheck: whatever the bytes, Check returns rather than panics, and an
// image it accepts can be walked whole without going out of bounds.
func FuzzCheck(f *testing.F) {
	var w Writer
	w.AddStandard()
	w.AddFile("/srv/a/b.txt", []byte("hello"), 0o644, time.Time{})
	good, _ := w.Bytes()
	f.Add(good)
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		img := string(b)
		if Check(img) != nil {
			return
		}
		for i := uint32(0); i < Count(img); i++ {
			n := At(img, i)
			_ = Name(img, n)
			if n.Kind == KindFile {
				_ = Data(img, n)
			}
			if n.IsDir() {
				Lookup(img, n, []byte("b.txt"))
			}
		}
	})
}
