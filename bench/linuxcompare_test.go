// Package bench holds the benchmark tools; this test checks that
// linux-compare.sh, which `make bench-linux` runs, works end to end.
package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
)

// TestLinuxCompareRunsEndToEnd runs bench/linux-compare.sh as briefly as it
// goes (one round of one second per measurement, MSI-X only): both guests
// boot, every measurement runs against both, and the table has a figure
// for each guest on every row. It needs root (network namespaces, tap
// devices; the script installs Debian's kernel, busybox and wrk if they are
// missing) and takes a few minutes under TCG; -short skips it. The figures
// themselves are not judged here: speed is for the benchmark.
func TestLinuxCompareRunsEndToEnd(t *testing.T) {
	boottest.NeedQEMU(t)
	if testing.Short() {
		t.Skip("boots a Linux guest and runs every measurement: not in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces, tap devices and apt-get")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./linux-compare.sh", "-seconds", "1", "-rounds", "1", "-intx", "none")
	var stderr bytes.Buffer // the script's log
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("table:\n%s", out)
	if err != nil {
		t.Fatalf("linux-compare.sh: %v\n%s", err, stderr.String())
	}
	for _, row := range []string{
		`idle ping RTT, average \(ms\)`,
		`TCP request/response, 1 byte \(trans/s\)`,
		`wrk GET / -c1 \(req/s\)`,
		`wrk GET / -c8 \(req/s\)`,
		`HTTP GET 64 MiB, guest TX \(MB/s\)`,
		`HTTP POST 64 MiB, guest RX \(MB/s\)`,
		`raw TCP guest TX \(MB/s\)`,
		`raw TCP guest RX \(MB/s\)`,
		`guest CPU per request \(us\)`,
	} {
		// The row, then a figure for Linux, one for govirtio, and a ratio.
		re := regexp.MustCompile(`(?m)^\s*` + row + `\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s*$`)
		if !re.Match(out) {
			t.Errorf("no row %q with both guests' figures and a ratio", row)
		}
	}
}
