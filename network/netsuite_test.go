package network_test

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
)

// network/testdata/netsuite checks a subset of what Go's own net and
// net/http test suites check (its cases name the tests): on Linux first,
// so that its expectations are Linux's, then unmodified in an image, over
// the kernel's sockets and the stack's loopback interface.

var netsuiteResult = regexp.MustCompile(`netsuite: (\d+) passed, (\d+) failed`)

func checkNetsuite(t *testing.T, out string) {
	t.Helper()
	m := netsuiteResult.FindStringSubmatch(out)
	if m == nil || m[1] == "0" || m[2] != "0" {
		t.Errorf("netsuite did not pass all its cases:\n%s", out)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "PASS ") {
			t.Log(line)
		}
	}
}

func TestNetsuiteOnTheHost(t *testing.T) {
	cmd := exec.Command("go", "run", "./network/testdata/netsuite")
	cmd.Dir = boottest.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("go run netsuite: %v", err)
	}
	checkNetsuite(t, string(out))
}

func TestBootNetsuite(t *testing.T) {
	img := boottest.BuildWithMkimage(t, "network/testdata/netsuite")
	g := boottest.Start(t, img, "-m", "256M", "-net", "user")
	g.WaitFor(`netsuite: \d+ passed`, 5*time.Minute)
	out, status := g.Wait()
	if status != 0 {
		t.Errorf("exit status %d", status)
	}
	checkNetsuite(t, out)
}
