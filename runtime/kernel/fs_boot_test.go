package kernel

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/govirtio/govirtio/internal/boottest"
	"github.com/govirtio/govirtio/internal/testca"
)

// An ordinary Go program with no govirtio import, built by cmd/mkimage
// with a directory packed at /srv and a test CA beside the CA roots, reads
// its files through the standard library: os.ReadFile, os.ReadDir,
// fs.WalkDir, os.Chdir, http.FileServer (with a Range request), the
// resolver's files (/etc/resolv.conf from dns=, /etc/hosts from ip=,
// looked up without a socket) and x509.SystemCertPool (testdata/fscheck
// lists every check).
func TestBootProgramReadsPackedAndKernelFiles(t *testing.T) {
	boottest.NeedQEMU(t)
	ca := filepath.Join(t.TempDir(), "test-ca.pem")
	testca.New(t, "govirtio fscheck test CA").WriteFile(t, ca)
	img := boottest.BuildWithMkimage(t, "runtime/kernel/testdata/fscheck",
		"-files", "runtime/kernel/testdata/fscheck/www=/srv",
		"-files", ca+"=/etc/ssl/certs/test-ca.pem")
	out, status := boottest.Boot(t, img, "-m", "128M", "-append", "dns=10.0.2.3 ip=10.0.2.15/24")
	if status != 0 || boottest.LastLine(out) != "fscheck: ok" {
		t.Errorf("exit status %d, last line %q; want 0 and %q", status, boottest.LastLine(out), "fscheck: ok")
	}
	if !strings.Contains(out, "fscheck: the packed test CA is in the system pool") {
		t.Error("the test CA was not checked")
	}
}
