package boottest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// images caches built images by package path for the life of the test
// binary; Cleanup removes them.
var images sync.Map

type image struct {
	once sync.Once
	dir  string
	err  error
}

// RepoRoot is the repository's top directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("boottest: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// NeedQEMU skips the test when QEMU is not installed.
func NeedQEMU(t testing.TB) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("images are amd64")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
	}
}

// BuildImage builds the package at pkg (a path relative to the repository)
// into an image, once per test binary, and returns the image's path. The
// ELF it came from sits beside it with the suffix .elf.
func BuildImage(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := images.LoadOrStore(pkg, &image{})
	im := v.(*image)
	im.once.Do(func() { im.dir, im.err = build(RepoRoot(t), pkg) })
	if im.err != nil {
		t.Fatal(im.err)
	}
	return filepath.Join(im.dir, "image.img")
}

func build(root, pkg string) (string, error) {
	dir, err := os.MkdirTemp("", "govirtio-image-")
	if err != nil {
		return "", err
	}
	elf := filepath.Join(dir, "image.elf")
	cmd := exec.Command("go", "build", "-o", elf, "-ldflags", "-E _rt0_pvh", "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("boottest: go build %s: %v\n%s", pkg, err, out)
	}
	cmd = exec.Command("go", "run", "./cmd/mkimage", "-o", filepath.Join(dir, "image.img"), elf)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("boottest: mkimage %s: %v\n%s", pkg, err, out)
	}
	return dir, nil
}

// Cleanup removes the images built so far; call it from TestMain.
func Cleanup() {
	images.Range(func(_, v any) bool {
		if im := v.(*image); im.dir != "" {
			os.RemoveAll(im.dir)
		}
		return true
	})
}

// Guest is a QEMU guest booted through qemu.sh.
type Guest struct {
	t     testing.TB
	cmd   *exec.Cmd
	start time.Time
	mu    sync.Mutex
	out   bytes.Buffer // serial output so far, carriage returns removed
	done  chan struct{}
	err   error // from cmd.Wait, once done is closed
}

type lockedWriter struct{ g *Guest }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	w.g.out.Write(bytes.ReplaceAll(p, []byte("\r"), nil))
	return len(p), nil
}

// Start boots img with qemu.sh options args (a -timeout of 300 s is
// added first, so that a stuck guest cannot outlive the test). Arguments
// after a "--" go to QEMU itself.
func Start(t testing.TB, img string, args ...string) *Guest {
	t.Helper()
	return start(t, nil, img, args)
}

// StartInNetns is Start inside network namespace ns (for tap networking:
// the tap device lives in a namespace the test made).
func StartInNetns(t testing.TB, ns, img string, args ...string) *Guest {
	t.Helper()
	return start(t, []string{"ip", "netns", "exec", ns}, img, args)
}

func start(t testing.TB, prefix []string, img string, args []string) *Guest {
	t.Helper()
	NeedQEMU(t)
	opts, extra := args, []string(nil)
	for i, a := range args {
		if a == "--" {
			opts, extra = args[:i], args[i:]
			break
		}
	}
	all := append([]string{"-timeout", "300"}, opts...)
	all = append(all, img)
	all = append(all, extra...)
	g := &Guest{t: t, done: make(chan struct{}), start: time.Now()}
	argv := append(append(prefix, filepath.Join(RepoRoot(t), "qemu.sh")), all...)
	g.cmd = exec.Command(argv[0], argv[1:]...)
	g.cmd.Stdout = lockedWriter{g}
	g.cmd.Stderr = lockedWriter{g}
	// qemu.sh runs QEMU as a child: give them a process group of their
	// own so that Stop ends both, and bound the wait for their output.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g.cmd.WaitDelay = 5 * time.Second
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("boottest: qemu.sh: %v", err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		out, status := g.Stop()
		if t.Failed() {
			t.Logf("guest exit status %d; serial output:\n%s", status, out)
		}
	})
	return g
}

// Output is the serial output so far.
func (g *Guest) Output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

// WaitFor waits until the output matches the regular expression re and
// returns the match, failing the test after timeout or if the guest ends.
func (g *Guest) WaitFor(re string, timeout time.Duration) string {
	g.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		if m := rx.FindString(g.Output()); m != "" {
			return m
		}
		select {
		case <-deadline:
			g.t.Fatalf("boottest: no %q within %v; output:\n%s", re, timeout, g.Output())
		case <-g.done:
			if m := rx.FindString(g.Output()); m != "" {
				return m
			}
			g.t.Fatalf("boottest: guest ended (%v) before %q; output:\n%s", g.err, re, g.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Since is the time since the guest was started.
func (g *Guest) Since() time.Duration { return time.Since(g.start) }

// Wait waits for the guest to end by itself and returns its output and
// exit status (qemu.sh's: the guest's status, 124 on timeout).
func (g *Guest) Wait() (string, int) {
	<-g.done
	return g.Output(), exitStatus(g.err)
}

// Stop kills the guest if it still runs and returns its output and status.
func (g *Guest) Stop() (string, int) {
	select {
	case <-g.done:
	default:
		pgid := -g.cmd.Process.Pid
		syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(pgid, syscall.SIGKILL)
			<-g.done
		}
	}
	return g.Output(), exitStatus(g.err)
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Boot boots img to completion and returns its output and exit status.
func Boot(t testing.TB, img string, args ...string) (string, int) {
	t.Helper()
	g := Start(t, img, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	select {
	case <-g.done:
	case <-ctx.Done():
		g.Stop()
	}
	out, status := g.Wait()
	t.Logf("boot %v took %v, status %d; output:\n%s", args, g.Since().Round(time.Millisecond), status, out)
	return out, status
}

// LastLine is the last non-empty line of s.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// FreePort returns a TCP port on 127.0.0.1 that is free now (for QEMU's
// host forwarding).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
