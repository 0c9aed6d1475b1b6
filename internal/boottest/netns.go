package boottest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TapNetns creates a network namespace with a tap device gvtap0 at
// 10.0.3.1/24 for a guest to use (StartInNetns with -net tap -tap gvtap0),
// removed when the test ends. It skips the test without root, QEMU or ip.
func TapNetns(t testing.TB) string {
	t.Helper()
	NeedQEMU(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and a tap device")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian package iproute2)")
	}
	ns := fmt.Sprintf("govirtio-test-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "tuntap", "add", "dev", "gvtap0", "mode", "tap")
	run("-n", ns, "addr", "add", "10.0.3.1/24", "dev", "gvtap0")
	run("-n", ns, "link", "set", "gvtap0", "up")
	return ns
}

// InNetns runs f on an OS thread inside network namespace ns (one that
// "ip netns" made): the sockets f opens live in ns, and serve from any
// goroutine afterwards, so a test can run servers for a guest on a tap
// device in its own process.
func InNetns(t testing.TB, ns string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, now in ns, ends with this
		// goroutine instead of going back to the runtime.
		runtime.LockOSThread()
		h, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := unix.Setns(int(h.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("boottest: %v", err)
	}
}
