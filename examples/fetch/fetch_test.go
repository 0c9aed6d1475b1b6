package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
	"github.com/govirtio/govirtio/internal/testca"
)

func TestMain(m *testing.M) {
	code := m.Run()
	boottest.Cleanup()
	os.Exit(code)
}

// payloadServer serves body at /payload over TLS with cert on l.
func payloadServer(t *testing.T, l net.Listener, cert tls.Certificate, body []byte) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/payload" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}), ErrorLog: log.New(io.Discard, "", 0)} // the handshakes the tests fail on purpose
	go srv.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { srv.Close() })
}

func randomBytes(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// On the host, fetch checks the certificate and the digest: the roots
// are the system's plus a test CA (SSL_CERT_FILE, read once per process).
func TestFetchOnTheHost(t *testing.T) {
	ca, other := testca.New(t, "govirtio test CA"), testca.New(t, "someone else")
	file := filepath.Join(t.TempDir(), "ca.pem")
	ca.WriteFile(t, file)
	t.Setenv("SSL_CERT_FILE", file)
	body, sum := randomBytes(t, 100_000)
	serve := func(ca *testca.CA) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		payloadServer(t, l, ca.Issue(t, "127.0.0.1"), body)
		return "https://" + l.Addr().String() + "/payload"
	}
	trusted, untrusted := serve(ca), serve(other)
	ctx := context.Background()
	var out bytes.Buffer
	if err := fetch(ctx, &out, trusted, sum); err != nil {
		t.Errorf("fetch from a server the test CA vouches for: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), `issued by "govirtio test CA", verified`) {
		t.Errorf("no verified certificate in the output:\n%s", &out)
	}
	if err := fetch(ctx, &out, trusted, strings.Repeat("0", 64)); err == nil {
		t.Error("a body with another digest was accepted")
	}
	if err := fetch(ctx, &out, untrusted, ""); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("fetch from a server of an unknown CA: %v, want an unknown authority", err)
	}
	if err := fetch(ctx, &out, trusted[:len(trusted)-1], ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("fetch of a missing path: %v, want a 404", err)
	}
}

// The image of unmodified fetch, with a test CA packed beside the Mozilla
// roots, resolves a name through a DNS server in this process and fetches
// over HTTPS from a server in this process, on a tap device: the guest's
// resolver reads the /etc/resolv.conf the kernel made from dns=, and
// crypto/x509 reads the CA from the image's /etc/ssl/certs.
func TestBootFetchesOverHTTPSWithAPrivateCAAndDNS(t *testing.T) {
	ns := boottest.TapNetns(t)
	const host = "api.example.internal"
	ca := testca.New(t, "govirtio test CA")
	file := filepath.Join(t.TempDir(), "ca.pem")
	ca.WriteFile(t, file)
	img := boottest.BuildWithMkimage(t, "examples/fetch", "-files", file+"=/etc/ssl/certs/govirtio-test-ca.pem")
	body, sum := randomBytes(t, 4<<20)
	var asked atomic.Int32
	boottest.InNetns(t, ns, func() {
		l, err := net.Listen("tcp", "10.0.3.1:443")
		if err != nil {
			t.Fatal(err)
		}
		payloadServer(t, l, ca.Issue(t, host), body)
		pc, err := net.ListenPacket("udp", "10.0.3.1:53")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go serveDNS(pc, map[string]netip.Addr{host: netip.MustParseAddr("10.0.3.1")}, &asked)
	})
	g := boottest.StartInNetns(t, ns, img, "-m", "128M", "-net", "tap", "-tap", "gvtap0", "-append",
		fmt.Sprintf("-sha256 %s https://%s/payload ip=10.0.3.15/24 gw=10.0.3.1 dns=10.0.3.1", sum, host))
	g.WaitFor(`fetch: (ok|.*)`, 3*time.Minute)
	out, status := g.Wait()
	if status != 0 || boottest.LastLine(out) != "fetch: ok" {
		t.Fatalf("exit status %d, last line %q; want 0 and %q", status, boottest.LastLine(out), "fetch: ok")
	}
	for _, want := range []string{
		"fetch: " + host + " is [10.0.3.1]",
		`issued by "govirtio test CA", verified`,
		fmt.Sprintf("200 OK, %d bytes", len(body)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	if asked.Load() == 0 {
		t.Error("the DNS server was not asked for the name")
	}
}

// serveDNS answers queries on pc from names: an A record for a name it
// has, no record for another type, NXDOMAIN for another name. asked
// counts the queries for names it has.
func serveDNS(pc net.PacketConn, names map[string]netip.Addr, asked *atomic.Int32) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply := dnsAnswer(buf[:n], names, asked); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

// dnsAnswer answers a one-question query (RFC 1035 §4.1), or returns nil.
func dnsAnswer(q []byte, names map[string]netip.Addr, asked *atomic.Int32) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i:i+l]))
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	addr, ok := names[strings.ToLower(strings.Join(labels, "."))]
	if ok {
		asked.Add(1)
	}
	// QR, AA, RA, the query's RD; NXDOMAIN for a name not held.
	flags := 0x8480 | binary.BigEndian.Uint16(q[2:])&0x0100
	if !ok {
		flags |= 3
	}
	var answers uint16
	if ok && qtype == 1 && addr.Is4() {
		answers = 1
	}
	r := append([]byte{q[0], q[1]}, byte(flags>>8), byte(flags), 0, 1, byte(answers>>8), byte(answers), 0, 0, 0, 0)
	r = append(r, q[12:i+4]...)
	if answers == 1 {
		r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // the name, A, IN, TTL 60 s, 4 bytes
		r = append(r, addr.AsSlice()...)
	}
	return r
}
