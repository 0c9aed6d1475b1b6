package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/govirtio/govirtio/runtime/fsimage"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// govirtioModule is this repository's module path.
const govirtioModule = "github.com/govirtio/govirtio"

// runtimeImports are the packages build mode links into every program,
// through an extra file of its main package: the kernel (which holds the
// PVH entry _rt0_pvh) and the network's automatic bring-up before main.
// An import whose directory is missing from the govirtio tree in use is
// left out, and so is network/auto for a program that imports package
// network itself: it starts the network with its own Config, which an
// automatic bring-up would take the place of.
var runtimeImports = []string{
	govirtioModule + "/runtime/kernel",
	autoImport,
}

const (
	autoImport    = govirtioModule + "/network/auto"
	networkImport = govirtioModule + "/network"
)

// Where the build puts things.
const (
	// imageFile is the extra file of the main package, named so that it
	// sorts last and is unlikely to clash with a user's file.
	imageFile = "zz_govirtio_image.go"
	// packedTree is the kernel's embedded tree, which the overlay swaps
	// for the packed one (runtime/kernel/fs_files.go).
	packedTree = "runtime/kernel/files.gvfs"
	// rootsPath is where the CA roots are served: the first file
	// crypto/x509 looks for on Linux.
	rootsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// buildOptions are build mode's flags.
type buildOptions struct {
	files    []packSpec // -files
	roots    bool       // -roots
	govirtio string     // -govirtio
	elfOut   string     // -elf
	tags     string     // -tags
	ldflags  string     // -ldflags
	stderr   io.Writer  // the go command's output
}

// packSpec is one -files SRC[=DEST].
type packSpec struct {
	src, dest string
}

// parsePackSpec reads SRC[=DEST]: DEST is the absolute path in the image,
// by default /BASE with BASE the last element of SRC; a DEST ending in /
// is a directory to put BASE in. The split is at the last "=/", so a host
// path may hold '='.
func parsePackSpec(s string) (packSpec, error) {
	src, dest := s, ""
	if i := strings.LastIndex(s, "=/"); i >= 0 {
		src, dest = s[:i], s[i+1:]
	}
	if src == "" {
		return packSpec{}, fmt.Errorf("%w: -files %q: no source", errUsage, s)
	}
	if dest == "" || strings.HasSuffix(dest, "/") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return packSpec{}, fmt.Errorf("-files %q: %w", s, err)
		}
		if dest == "" {
			dest = "/"
		}
		dest += filepath.Base(abs)
	}
	return packSpec{src: src, dest: dest}, nil
}

// packFiles builds the image's file tree: the standard /etc files, the CA
// roots unless roots is false, then the packed files and directories in
// the order given (a later one replaces an earlier file of the same path).
func packFiles(specs []packSpec, roots bool) ([]byte, int, error) {
	var w fsimage.Writer
	if err := w.AddStandard(); err != nil {
		return nil, 0, err
	}
	nroots := 0
	if roots {
		pem, n := rootsPEM()
		if err := w.AddFile(rootsPath, pem, 0o644, time.Time{}); err != nil {
			return nil, 0, err
		}
		nroots = n
	}
	for _, s := range specs {
		info, err := os.Stat(s.src)
		if err != nil {
			return nil, 0, fmt.Errorf("-files: %w", err)
		}
		if info.IsDir() {
			err = w.AddFS(os.DirFS(s.src), s.dest)
		} else {
			var data []byte
			if data, err = os.ReadFile(s.src); err == nil {
				err = w.AddFile(s.dest, data, info.Mode(), info.ModTime())
			}
		}
		if err != nil {
			return nil, 0, fmt.Errorf("-files %s: %w", s.src, err)
		}
	}
	b, err := w.Bytes()
	return b, nroots, err
}

// rootsPEM returns the Mozilla roots of golang.org/x/crypto's
// x509roots/fallback bundle (the version go.mod names) as a PEM file, and
// how many it holds. A root the bundle constrains (a distrust-after date
// that X.509 cannot express) is left out: served as a plain file it would
// be trusted for certificates issued after that date.
func rootsPEM() ([]byte, int) {
	var b bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
		n++
	}
	return b.Bytes(), n
}

// goPackage is what go list says of the package to build.
type goPackage struct {
	Dir, Name, ImportPath string
	Deps                  []string
	Module                *struct {
		Path, Dir, GoVersion string
	}
	Error *struct{ Err string }
}

// goCommand runs the go command in dir with extra environment and returns
// its standard output.
func goCommand(dir string, env []string, stderr io.Writer, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(&errb, stderr)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// listPackage finds pkg: a directory (run go list inside it, so that a
// package of another module is found in its own module) or an import
// path (from the current directory).
func listPackage(pkg string, stderr io.Writer) (*goPackage, error) {
	dir, arg := "", pkg
	if info, err := os.Stat(pkg); err == nil && info.IsDir() {
		dir, arg = pkg, "."
	}
	out, err := goCommand(dir, []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"}, io.Discard, "list", "-e", "-json", arg)
	if err != nil {
		return nil, err
	}
	var p goPackage
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("go list %s: %w", pkg, err)
	}
	if p.Error != nil {
		return nil, fmt.Errorf("%s: %s", pkg, p.Error.Err)
	}
	if p.Name != "main" {
		return nil, fmt.Errorf("%s: package %s is not a main package", pkg, p.Name)
	}
	if p.Module == nil {
		return nil, fmt.Errorf("%s: not in a module", pkg)
	}
	return &p, nil
}

// findGovirtio returns the directory of the govirtio module to link, and
// whether the program's module already has it (itself or a requirement,
// so no workspace is needed): -govirtio when given, else what the
// program's module requires, else the module of the current directory.
func findGovirtio(p *goPackage, flagDir string) (dir string, required bool, err error) {
	if flagDir != "" {
		abs, err := filepath.Abs(flagDir)
		return abs, p.Module.Path == govirtioModule && samePath(abs, p.Module.Dir), err
	}
	if p.Module.Path == govirtioModule {
		return p.Module.Dir, true, nil
	}
	if out, err := goCommand(p.Dir, nil, io.Discard, "list", "-m", "-f", "{{.Dir}}", govirtioModule); err == nil && len(bytes.TrimSpace(out)) > 0 {
		return string(bytes.TrimSpace(out)), true, nil
	}
	out, err := goCommand("", []string{"GOWORK=off"}, io.Discard, "list", "-m", "-f", "{{.Path}} {{.Dir}}")
	if path, d, ok := strings.Cut(strings.TrimSpace(string(out)), " "); err == nil && ok && path == govirtioModule {
		return d, false, nil
	}
	return "", false, fmt.Errorf("%s is in module %s, which does not require %s, and the current directory is not a govirtio checkout: run mkimage from one or give -govirtio DIR", p.ImportPath, p.Module.Path, govirtioModule)
}

func samePath(a, b string) bool {
	return filepath.Clean(a) == filepath.Clean(b)
}

// buildImage is build mode: it builds the main package pkg, unmodified,
// into a static ELF with the runtime linked in and the packed files
// embedded, and returns the ELF's bytes.
//
// The program's source is not touched: go build -overlay adds imageFile
// (the blank imports of runtimeImports) to its package and swaps the
// kernel's files.gvfs for the packed tree. A program in a module that does
// not require govirtio is built in a temporary workspace (go.work) of its
// module and the govirtio checkout.
func buildImage(pkg string, o buildOptions) ([]byte, string, error) {
	p, err := listPackage(pkg, o.stderr)
	if err != nil {
		return nil, "", err
	}
	gv, required, err := findGovirtio(p, o.govirtio)
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(filepath.Join(p.Dir, imageFile)); err == nil {
		return nil, "", fmt.Errorf("%s already has a file named %s", p.Dir, imageFile)
	}
	tree, nroots, err := packFiles(o.files, o.roots)
	if err != nil {
		return nil, "", err
	}
	tmp, err := os.MkdirTemp("", "mkimage-build-")
	if err != nil {
		return nil, "", fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)

	var src bytes.Buffer
	src.WriteString("// Code generated by govirtio's cmd/mkimage for this build only; DO NOT EDIT.\n\npackage main\n\nimport (\n")
	for _, imp := range runtimeImports {
		if imp == autoImport && slices.Contains(p.Deps, networkImport) {
			continue
		}
		if _, err := os.Stat(filepath.Join(gv, strings.TrimPrefix(imp, govirtioModule+"/"))); err == nil {
			fmt.Fprintf(&src, "\t_ %q\n", imp)
		}
	}
	src.WriteString(")\n")
	overlay := map[string]string{
		filepath.Join(p.Dir, imageFile): filepath.Join(tmp, imageFile),
		filepath.Join(gv, packedTree):   filepath.Join(tmp, "files.gvfs"),
	}
	if err := os.WriteFile(filepath.Join(tmp, imageFile), src.Bytes(), 0o644); err != nil {
		return nil, "", fmt.Errorf("build: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "files.gvfs"), tree, 0o644); err != nil {
		return nil, "", fmt.Errorf("build: %w", err)
	}
	j, _ := json.Marshal(map[string]any{"Replace": overlay})
	if err := os.WriteFile(filepath.Join(tmp, "overlay.json"), j, 0o644); err != nil {
		return nil, "", fmt.Errorf("build: %w", err)
	}

	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}
	var modfile []string
	switch {
	case !required:
		work, err := writeWorkspace(tmp, p.Module.Dir, gv)
		if err != nil {
			return nil, "", err
		}
		env = append(env, "GOWORK="+work)
	case p.Module.Path != govirtioModule:
		// The added imports (network/auto) need go.sum lines the
		// program's own imports may not: build with a copy of its go.mod
		// whose go.sum has govirtio's lines too, leaving its files alone.
		if modfile, err = writeModfile(tmp, p.Module.Dir, gv); err != nil {
			return nil, "", err
		}
	}
	elfPath := filepath.Join(tmp, "app.elf")
	ldflags := "-E _rt0_pvh"
	if o.ldflags != "" {
		ldflags += " " + o.ldflags
	}
	args := append([]string{"build", "-overlay", filepath.Join(tmp, "overlay.json"), "-ldflags", ldflags, "-o", elfPath}, modfile...)
	if o.tags != "" {
		args = append(args, "-tags", o.tags)
	}
	if _, err := goCommand(p.Dir, env, o.stderr, append(args, ".")...); err != nil {
		return nil, "", err
	}
	data, err := os.ReadFile(elfPath)
	if err != nil {
		return nil, "", fmt.Errorf("build: %w", err)
	}
	if o.elfOut != "" {
		if err := writeFileAtomic(o.elfOut, data); err != nil {
			return nil, "", err
		}
	}
	what := fmt.Sprintf("%s: packed files %d bytes", p.ImportPath, len(tree))
	if o.roots {
		what += fmt.Sprintf(" (%d CA roots at %s)", nroots, rootsPath)
	}
	return data, what, nil
}

// writeModfile writes copies of the go.mod of the module in modDir and
// of its go.sum, with the go.sum of the govirtio module in gv added, to
// dir, and returns the go build flags that use them (-mod=mod lets go
// build add to the copies the requirements the added imports need).
func writeModfile(dir, modDir, gv string) ([]string, error) {
	mod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	var sum []byte
	for _, d := range []string{modDir, gv} {
		b, err := os.ReadFile(filepath.Join(d, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("build: %w", err)
		}
		sum = append(append(sum, b...), '\n')
	}
	path := filepath.Join(dir, "go.mod")
	if err := os.WriteFile(path, mod, 0o644); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return []string{"-modfile", path, "-mod=mod"}, nil
}

// writeWorkspace writes a go.work in dir that uses the program's module
// and govirtio, and returns its path.
func writeWorkspace(dir, userMod, govirtio string) (string, error) {
	if samePath(userMod, govirtio) {
		return "", errors.New("build: the program's module is the govirtio checkout but is not named " + govirtioModule)
	}
	goVersion, err := workGoVersion(userMod, govirtio)
	if err != nil {
		return "", err
	}
	work := fmt.Sprintf("go %s\n\nuse (\n\t%q\n\t%q\n)\n", goVersion, userMod, govirtio)
	path := filepath.Join(dir, "go.work")
	if err := os.WriteFile(path, []byte(work), 0o644); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return path, nil
}

// workGoVersion is the highest go directive of the modules' go.mod
// files: a workspace must ask for at least each module's.
func workGoVersion(mods ...string) (string, error) {
	best := "1.21"
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(m, "go.mod"))
		if err != nil {
			return "", fmt.Errorf("build: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "go" && versionLess(best, f[1]) {
				best = f[1]
			}
		}
	}
	return best, nil
}

// versionLess compares Go versions such as 1.26 and 1.26.3 numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscan(as[i], &x)
		}
		if i < len(bs) {
			fmt.Sscan(bs[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}
