package kernel

import (
	"testing"

	"github.com/govirtio/govirtio/internal/boottest"
)

// An ordinary Go program with no govirtio import, built by cmd/mkimage
// with a directory packed at /srv, reads its files through the standard
// library: os.ReadFile, os.ReadDir, fs.WalkDir, http.FileServer (with a
// Range request), the resolver's files (/etc/resolv.conf from dns=,
// /etc/hosts from ip=, looked up without a socket) and the CA roots
// (testdata/fscheck lists every check).
func TestBootProgramReadsPackedAndKernelFiles(t *testing.T) {
	img := boottest.BuildWithMkimage(t, "runtime/kernel/testdata/fscheck",
		"-files", "runtime/kernel/testdata/fscheck/www=/srv")
	out, status := boottest.Boot(t, img, "-m", "128M", "-append", "dns=10.0.2.3 ip=10.0.2.15/24")
	if status != 0 || boottest.LastLine(out) != "fscheck: ok" {
		t.Errorf("exit status %d, last line %q; want 0 and %q", status, boottest.LastLine(out), "fscheck: ok")
	}
}
