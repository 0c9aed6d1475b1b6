package boottest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BuildWithMkimage builds the main package pkg (a path relative to the
// repository, or any directory) with cmd/mkimage's build mode, passing
// args (-files ... and the like) before the package, once per test binary
// for each pkg and args. It returns the image's path; the ELF is beside it
// with the suffix .elf, as with BuildImage. The package need not import
// govirtio: mkimage links the runtime in.
func BuildWithMkimage(t testing.TB, pkg string, args ...string) string {
	t.Helper()
	key := "mkimage\x00" + pkg + "\x00" + strings.Join(args, "\x00")
	v, _ := images.LoadOrStore(key, &image{})
	im := v.(*image)
	im.once.Do(func() { im.dir, im.err = mkimage(RepoRoot(t), pkg, args) })
	if im.err != nil {
		t.Fatal(im.err)
	}
	return filepath.Join(im.dir, "image.img")
}

func mkimage(root, pkg string, args []string) (string, error) {
	dir, err := os.MkdirTemp("", "govirtio-image-")
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(pkg) {
		pkg = "./" + pkg
	}
	argv := append([]string{"run", "./cmd/mkimage", "-elf", filepath.Join(dir, "image.elf"), "-o", filepath.Join(dir, "image.img")}, args...)
	cmd := exec.Command("go", append(argv, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("boottest: mkimage %s: %v\n%s", pkg, err, out)
	}
	return dir, nil
}
