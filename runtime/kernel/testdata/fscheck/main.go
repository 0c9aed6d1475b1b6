// Command fscheck is an ordinary Go program, with no govirtio import, that
// checks the files an image built by cmd/mkimage serves: its www
// directory packed at /srv (-files), the kernel's /etc files and the CA
// roots. The boot test (fs_boot_test.go) boots it with "dns=10.0.2.3
// ip=10.0.2.15/24" on the command line. It prints one line per failed
// check and ends with "fscheck: ok" or "fscheck: FAIL" (exit status 1).
package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"slices"
	"strings"
	"syscall"
)

var failed bool

func check(ok bool, format string, args ...any) {
	if !ok {
		failed = true
		fmt.Printf("fscheck: "+format+"\n", args...)
	}
}

func main() {
	b, err := os.ReadFile("/srv/hello.txt")
	check(err == nil && string(b) == "hello, files\n", "os.ReadFile(/srv/hello.txt) = %q, %v", b, err)
	b, err = os.ReadFile("srv/sub/deeper/leaf.txt")
	check(err == nil && string(b) == "deep\n", "os.ReadFile of a relative path = %q, %v", b, err)

	ents, err := os.ReadDir("/srv")
	var names []string
	for _, e := range ents {
		names = append(names, fmt.Sprintf("%s:%v", e.Name(), e.IsDir()))
	}
	check(err == nil && strings.Join(names, " ") == "hello.txt:false sub:true", "os.ReadDir(/srv) = %v, %v", names, err)

	var walked []string
	err = fs.WalkDir(os.DirFS("/srv"), ".", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	})
	want := []string{".", "hello.txt", "sub", "sub/deeper", "sub/deeper/leaf.txt", "sub/index.html"}
	check(err == nil && slices.Equal(walked, want), "fs.WalkDir = %v, %v; want %v", walked, err, want)

	fi, err := os.Stat("/srv/sub/index.html")
	check(err == nil && fi.Size() == 15 && fi.Mode().IsRegular(), "os.Stat = %v, %v", fi, err)
	_, err = os.Stat("/srv/missing")
	check(errors.Is(err, fs.ErrNotExist), "os.Stat of a missing file: %v", err)
	err = os.WriteFile("/srv/new.txt", []byte("x"), 0o644)
	check(errors.Is(err, syscall.EROFS), "os.WriteFile: %v, want EROFS", err)
	wd, err := os.Getwd()
	check(err == nil && wd == "/", "os.Getwd = %q, %v", wd, err)
	err = os.Chdir("/srv/sub")
	b, rerr := os.ReadFile("index.html")
	wd, werr := os.Getwd()
	check(err == nil && rerr == nil && string(b) == "<h1>index</h1>\n" && wd == "/srv/sub", "after os.Chdir: %v, ReadFile %q %v, Getwd %q %v", err, b, rerr, wd, werr)
	check(os.Chdir("/") == nil, "os.Chdir(/)")

	rc, err := os.ReadFile("/etc/resolv.conf")
	check(err == nil && strings.Contains(string(rc), "nameserver 10.0.2.3\n"), "/etc/resolv.conf = %q, %v", rc, err)
	addrs, err := net.LookupHost("govirtio")
	check(err == nil && slices.Equal(addrs, []string{"10.0.2.15"}), "net.LookupHost(govirtio) = %v, %v", addrs, err)
	addrs, err = net.LookupHost("localhost")
	check(err == nil && slices.Contains(addrs, "127.0.0.1"), "net.LookupHost(localhost) = %v, %v", addrs, err)

	u, err := user.Current()
	check(err == nil && u.Username == "root" && u.Uid == "0", "user.Current = %+v, %v", u, err)

	pool, err := x509.SystemCertPool()
	n := 0
	if err == nil {
		n = len(pool.Subjects()) //nolint:staticcheck // a count is all that is wanted
	}
	check(err == nil && n > 100, "x509.SystemCertPool: %d roots, %v", n, err)
	// The boot test packs a CA of its own beside the bundle, as a test of
	// TLS would: crypto/x509 reads every file of /etc/ssl/certs.
	if pemData, err := os.ReadFile("/etc/ssl/certs/test-ca.pem"); err == nil && pool != nil {
		block, _ := pem.Decode(pemData)
		ca, err := x509.ParseCertificate(block.Bytes)
		found := false
		for _, s := range pool.Subjects() { //nolint:staticcheck // comparing subjects is enough
			found = found || err == nil && bytes.Equal(s, ca.RawSubject)
		}
		check(found, "the packed test CA is not in the system pool (%v)", err)
		if found {
			fmt.Println("fscheck: the packed test CA is in the system pool")
		}
	}

	// http.FileServer over the packed directory, without a socket.
	srv := http.FileServer(http.Dir("/srv"))
	get := func(path, rangeHdr string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		if rangeHdr != "" {
			req.Header.Set("Range", rangeHdr)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		body, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(body)
	}
	code, body := get("/hello.txt", "")
	check(code == 200 && body == "hello, files\n", "FileServer GET /hello.txt = %d %q", code, body)
	code, body = get("/hello.txt", "bytes=7-11")
	check(code == 206 && body == "files", "FileServer GET /hello.txt Range 7-11 = %d %q", code, body)
	code, body = get("/", "")
	check(code == 200 && strings.Contains(body, `href="hello.txt"`) && strings.Contains(body, `href="sub/"`), "FileServer GET / = %d %q", code, body)
	code, body = get("/sub/", "")
	check(code == 200 && body == "<h1>index</h1>\n", "FileServer GET /sub/ = %d %q (index.html)", code, body)
	code, _ = get("/nope", "")
	check(code == 404, "FileServer GET /nope = %d", code)

	if failed {
		fmt.Println("fscheck: FAIL")
		os.Exit(1)
	}
	fmt.Println("fscheck: ok")
}
