package kernel

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
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
	writeTestCA(t, ca)
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

// writeTestCA writes a fresh self-signed CA certificate as PEM to path.
func writeTestCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "govirtio fscheck test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
