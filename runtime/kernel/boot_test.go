package kernel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The boot tests build programs into images and boot them under QEMU
// (qemu.sh picks TCG or KVM), asserting on the serial output and the exit
// status.

// imageOnce maps a package path to its *imageResult, built once per test
// binary in a temporary directory that TestMain removes.
var imageOnce sync.Map

func TestMain(m *testing.M) {
	code := m.Run()
	imageOnce.Range(func(_, v any) bool {
		if r := v.(*imageResult); r.path != "" {
			os.RemoveAll(filepath.Dir(r.path))
		}
		return true
	})
	os.Exit(code)
}

type imageResult struct {
	once sync.Once
	path string
	err  error
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildImage builds the package at pkg (relative to the repository) into
// a bootable image, once per test binary.
func buildImage(t *testing.T, pkg string) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("images are amd64")
	}
	v, _ := imageOnce.LoadOrStore(pkg, &imageResult{})
	r := v.(*imageResult)
	r.once.Do(func() {
		root := repoRoot(t)
		dir, err := os.MkdirTemp("", "govirtio-image-")
		if err != nil {
			r.err = err
			return
		}
		elf := filepath.Join(dir, "image.elf") // kept beside the image: entry_test.go reads it
		r.path = filepath.Join(dir, "image.img")
		build := exec.Command("go", "build", "-o", elf, "-ldflags", "-E _rt0_pvh", "./"+pkg)
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := build.CombinedOutput(); err != nil {
			r.err = errors.New("go build: " + err.Error() + "\n" + string(out))
			return
		}
		mk := exec.Command("go", "run", "./cmd/mkimage", "-o", r.path, elf)
		mk.Dir = root
		if out, err := mk.CombinedOutput(); err != nil {
			r.err = errors.New("mkimage: " + err.Error() + "\n" + string(out))
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// bootImage runs qemu.sh with args and the image, returning the serial output
// (carriage returns removed) and the exit status.
func bootImage(t *testing.T, image string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmdArgs := append([]string{"-timeout", "150"}, args...)
	cmdArgs = append(cmdArgs, image)
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(t), "qemu.sh"), cmdArgs...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("qemu.sh: %v", err)
	}
	text := strings.ReplaceAll(out.String(), "\r", "")
	t.Logf("boot %v took %v, status %d; output:\n%s", args, time.Since(start).Round(time.Millisecond), status, text)
	return text, status
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestBootHello(t *testing.T) {
	img := buildImage(t, "examples/hello")
	for _, mem := range []string{"256M", "64M"} {
		t.Run(mem, func(t *testing.T) {
			out, status := bootImage(t, img, "-m", mem, "-append", "first second")
			if status != 0 {
				t.Errorf("exit status %d, want 0", status)
			}
			if got := lastLine(out); got != "hello: ok" {
				t.Errorf("last line %q, want %q", got, "hello: ok")
			}
			if !strings.Contains(out, `args ["first" "second"]`) {
				t.Errorf("the command line did not reach os.Args")
			}
		})
	}
}

func TestBootBehaviour(t *testing.T) {
	img := buildImage(t, "runtime/kernel/testdata/bootcheck")
	tests := []struct {
		name   string
		args   []string
		status int      // expected exit status; -1: any non-zero
		want   []string // regular expressions the output must match
	}{
		{"exit status reaches the host", []string{"-append", "exit"}, 7, []string{`bootcheck: exiting with 7`}},
		{"1 GiB allocated in 256 MiB completes", []string{"-m", "256M", "-append", "alloc"}, 0,
			[]string{`allocated 1024 MiB`, `bootcheck: alloc ok`}},
		{"nil dereference in a goroutine is recovered", []string{"-append", "nilderef"}, 0,
			[]string{`recovered: runtime error: invalid memory address or nil pointer dereference`, `bootcheck: nilderef ok`}},
		{"spinning goroutine does not stop the GC", []string{"-append", "spin"}, 0, []string{`bootcheck: spin ok`}},
		{"fault on a kernel address is dumped and decoded", []string{"-append", "badaddr"}, -1,
			[]string{`kernel: page fault on a kernel address`, `rip\s+0x[0-9a-f]{16}`, `code\s+([0-9a-f]{2} )+`,
				`crash: faulting instruction at 0x[0-9a-f]+: MOV`}},
		{"a goroutine waiting on an interrupt line wakes for each interrupt", []string{"-append", "irq"}, 0,
			[]string{`MSI address 0xfee00000 data 0x50`, `waiter saw 3 interrupts`, `bootcheck: irq ok`}},
		{"drivers reach DMA memory, registers and ports", []string{"-append", "machine"}, 0,
			[]string{`DMA, registers and ports work`, `bootcheck: machine ok`}},
		{"unrecovered panic exits non-zero", []string{"-append", "panic"}, 2,
			[]string{`panic: bootcheck: deliberate panic`, `goroutine 1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, status := bootImage(t, img, tc.args...)
			switch {
			case tc.status == -1 && (status == 0 || status >= 124):
				t.Errorf("exit status %d, want a guest failure status", status)
			case tc.status >= 0 && status != tc.status:
				t.Errorf("exit status %d, want %d", status, tc.status)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %q", w)
				}
			}
		})
	}
}
