package main

import (
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/govirtio/govirtio/runtime/fsimage"
)

// Build mode's tests build real images with the go command (a few
// seconds each once the build cache is warm) and look inside them; the
// boot test of such an image is runtime/kernel's
// TestBootProgramReadsPackedAndKernelFiles.

func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	if testing.Short() {
		t.Skip("builds images: not in -short")
	}
}

func TestParsePackSpec(t *testing.T) {
	tests := []struct {
		in, src, dest string
	}{
		{"www=/srv", "www", "/srv"},
		{"testdata/www=/srv/site", "testdata/www", "/srv/site"},
		{"ca.pem=/etc/ssl/certs/test-ca.pem", "ca.pem", "/etc/ssl/certs/test-ca.pem"},
		{"a=b=/x", "a=b", "/x"}, // the last "=/" splits
		{"static", "static", "/static"},
		{"./web/static/", "./web/static/", "/static"},
		{"certs/ca.pem=/etc/ssl/certs/", "certs/ca.pem", "/etc/ssl/certs/ca.pem"},
		{"www=/", "www", "/www"},
	}
	for _, tc := range tests {
		p, err := parsePackSpec(tc.in)
		if err != nil || p.src != tc.src || p.dest != tc.dest {
			t.Errorf("parsePackSpec(%q) = %+v, %v; want %s -> %s", tc.in, p, err, tc.src, tc.dest)
		}
	}
	if _, err := parsePackSpec("=/srv"); err == nil {
		t.Error("no source was accepted")
	}
}

func TestRootsAreAPEMFileCryptoX509Reads(t *testing.T) {
	pem, n := rootsPEM()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate parsed")
	}
	if got := len(pool.Subjects()); got != n || n < 100 { //nolint:staticcheck // a count is all that is wanted
		t.Errorf("%d certificates parsed of %d written; want over 100", got, n)
	}
	t.Logf("%d roots, %d bytes of PEM", n, len(pem))
}

// packedTree finds the packed file tree in an image: the one well-formed
// tree (fsimage.Check) of more than one node after a magic.
func packedTreeOf(t *testing.T, img []byte) string {
	t.Helper()
	for off := 0; ; {
		i := bytes.Index(img[off:], []byte(fsimage.Magic))
		if i < 0 {
			t.Fatal("no packed tree in the image")
		}
		off += i
		if off+fsimage.HeaderSize <= len(img) {
			n := binary.LittleEndian.Uint64(img[off+24:])
			if n <= uint64(len(img)-off) {
				tree := string(img[off : off+int(n)])
				if fsimage.Check(tree) == nil && fsimage.Count(tree) > 1 {
					return tree
				}
			}
		}
		off++
	}
}

// lookup walks an absolute path in a tree.
func lookup(tree, path string) (fsimage.Node, bool) {
	n := fsimage.At(tree, 0)
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		i, ok := fsimage.Lookup(tree, n, []byte(c))
		if !ok {
			return fsimage.Node{}, false
		}
		n = fsimage.At(tree, i)
	}
	return n, true
}

// entryIsPVH checks that img enters at _rt0_pvh through the PVH note.
func entryIsPVH(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if strings.HasSuffix(s.Name, "_rt0_pvh") || strings.HasSuffix(s.Name, "_rt0_pvh.abi0") {
			if f.Entry != s.Value {
				t.Errorf("entry %#x, _rt0_pvh at %#x", f.Entry, s.Value)
			}
			return
		}
	}
	t.Error("no _rt0_pvh in the image: the runtime was not linked")
}

func TestBuildModeLinksTheRuntimeAndPacksFiles(t *testing.T) {
	needGo(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "app.img")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-o", out, "-elf", filepath.Join(dir, "app.elf"),
		"-files", "../../runtime/kernel/testdata/fscheck/www=/srv",
		"-files", "testdata/boot/main.go=/etc/extra/main.go",
		"../../runtime/kernel/testdata/fscheck"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.elf")); err != nil {
		t.Errorf("-elf: %v", err)
	}
	entryIsPVH(t, out)
	if !strings.Contains(stdout.String(), "CA roots") || !strings.Contains(stdout.String(), "PVH entry") {
		t.Errorf("output:\n%s", stdout.String())
	}
	tree := packedTreeOf(t, img)
	for path, want := range map[string]string{
		"/srv/hello.txt":           "hello, files\n",
		"/srv/sub/deeper/leaf.txt": "deep\n",
		"/etc/nsswitch.conf":       fsimage.StandardNSSwitch,
	} {
		n, ok := lookup(tree, path)
		if !ok || n.Kind != fsimage.KindFile || fsimage.Data(tree, n) != want {
			t.Errorf("%s: %+v in the image, want %q", path, n, want)
		}
	}
	if n, ok := lookup(tree, "/etc/extra/main.go"); !ok || !strings.Contains(fsimage.Data(tree, n), "package main") {
		t.Error("a single file packed with -files is missing")
	}
	if n, ok := lookup(tree, "/etc/resolv.conf"); !ok || n.Kind != fsimage.KindKernel {
		t.Error("/etc/resolv.conf is not the kernel's")
	}
	n, ok := lookup(tree, rootsPath)
	if !ok {
		t.Fatalf("no %s", rootsPath)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM([]byte(fsimage.Data(tree, n))) {
		t.Errorf("%s holds no certificate", rootsPath)
	}
	// The program's source is untouched.
	if _, err := os.Stat(filepath.Join("../../runtime/kernel/testdata/fscheck", imageFile)); err == nil {
		t.Error("the generated file was left in the program's directory")
	}
}

// A main package in a module of its own, which does not require govirtio,
// builds in a temporary workspace with the checkout the command runs from.
func TestBuildModeOfAProgramInAnotherModule(t *testing.T) {
	needGo(t)
	src := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/app\n\ngo 1.26\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"app: ok\") }\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "app.img")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-roots=false", "-o", out, src}, &stdout, &stderr); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	entryIsPVH(t, out)
	img, _ := os.ReadFile(out)
	if _, ok := lookup(packedTreeOf(t, img), rootsPath); ok {
		t.Errorf("-roots=false still packed %s", rootsPath)
	}
	left, _ := os.ReadDir(src)
	if len(left) != len(files) {
		t.Errorf("the program's directory now holds %d files, want %d", len(left), len(files))
	}
}

// A program whose module requires govirtio (here through a replace of
// this checkout, as a published version would come from the module
// cache) builds in its own module, with no workspace: the overlay swaps
// the kernel's tree in that copy of govirtio.
func TestBuildModeOfAProgramThatRequiresGovirtio(t *testing.T) {
	needGo(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/app\n\ngo 1.26.3\n\nrequire " + govirtioModule + " v0.0.0\n\nreplace " + govirtioModule + " => " + root + "\n",
		"go.sum": string(sum),
		// Built for the host as well, it uses the kernel's API: the
		// requirement is real.
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"" + govirtioModule + "/runtime/kernel\"\n)\n\nfunc main() { fmt.Println(kernel.SysSetKernelFile) }\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The module lists govirtio's own requirements, as go mod tidy writes
	// them; from the module cache only, so that the test needs no network.
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = src
	tidy.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	if b, err := tidy.CombinedOutput(); err != nil {
		t.Skipf("go mod tidy without the network: %v\n%s", err, b)
	}
	out := filepath.Join(t.TempDir(), "app.img")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-o", out, "-files", "testdata/boot/main.go=/x/main.go", src}, &stdout, &stderr); err != nil {
		t.Fatalf("build: %v\n%s", err, stderr.String())
	}
	entryIsPVH(t, out)
	img, _ := os.ReadFile(out)
	if _, ok := lookup(packedTreeOf(t, img), "/x/main.go"); !ok {
		t.Error("the packed file is missing: the overlay did not reach the required govirtio")
	}
}

func TestBuildModeRefusals(t *testing.T) {
	needGo(t)
	out := filepath.Join(t.TempDir(), "x.img")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a package that is not main", []string{"-o", out, "../../runtime/fsimage"}, "not a main package"},
		{"-files of a missing source", []string{"-o", out, "-files", "/nonexistent/dir=/srv", "../../examples/hello"}, "-files"},
		{"-entry in build mode", []string{"-entry", "x", "-o", out, "../../examples/hello"}, "-entry is for ELF mode"},
		{"build flags in ELF mode", []string{"-files", "testdata=/t", "-o", out, buildBoot(t)}, "for build mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWorkGoVersionTakesTheHighest(t *testing.T) {
	tests := []struct{ a, b string }{
		{"1.21", "1.26"}, {"1.26", "1.26.3"}, {"1.9", "1.10"}, {"1.26.3", "1.27"},
	}
	for _, tc := range tests {
		if !versionLess(tc.a, tc.b) || versionLess(tc.b, tc.a) {
			t.Errorf("versionLess(%s, %s) wrong", tc.a, tc.b)
		}
	}
}

// network/auto goes into a program that does not import package network
// (its sockets need the network brought up), and stays out of one that
// does, which starts the network itself with its own Config.
func TestBuildModeLinksNetworkAutoUnlessTheProgramStartsTheNetwork(t *testing.T) {
	needGo(t)
	for _, tc := range []struct {
		pkg      string
		wantAuto bool
	}{
		{"../../examples/stdhttpd", true},
		{"../../examples/echo", false},
	} {
		dir := t.TempDir()
		elfPath := filepath.Join(dir, "app.elf")
		var stdout, stderr bytes.Buffer
		if err := run([]string{"-o", filepath.Join(dir, "app.img"), "-elf", elfPath, "-roots=false", tc.pkg}, &stdout, &stderr); err != nil {
			t.Fatalf("build %s: %v\n%s", tc.pkg, err, stderr.String())
		}
		f, err := elf.Open(elfPath)
		if err != nil {
			t.Fatal(err)
		}
		syms, err := f.Symbols()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		hasAuto := slices.ContainsFunc(syms, func(s elf.Symbol) bool { return strings.HasPrefix(s.Name, autoImport+".") })
		if hasAuto != tc.wantAuto {
			t.Errorf("%s: network/auto linked %v, want %v", tc.pkg, hasAuto, tc.wantAuto)
		}
	}
}
