// Command fetch is a plain Go HTTPS client: it imports nothing of
// govirtio, and the same source runs on Linux and as an image, built with
//
//	go run ./cmd/mkimage -files ca.pem=/etc/ssl/certs/ca.pem -o fetch.img ./examples/fetch
//
// (-files only for a private CA; the Mozilla roots are in every image).
// It resolves the URL's host name, fetches the URL, checks the server's
// certificate against the system roots and, with -sha256, the body's
// digest, and prints one line about each step. Its exit status is 0 when
// all of it held, 1 when not.
//
//	fetch [-sha256 HEX] [-timeout D] URL [WORD...]
//
// Words after the URL are ignored: in an image they are the kernel
// command line's own (ip=, gw=, dns=), which reach os.Args too.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	want := flag.String("sha256", "", "the body's SHA-256 must be `HEX`")
	timeout := flag.Duration("timeout", time.Minute, "give up after `D`")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fetch [-sha256 HEX] [-timeout D] URL\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := fetch(ctx, os.Stdout, flag.Arg(0), *want); err != nil {
		fmt.Printf("fetch: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("fetch: ok")
}

// fetch resolves rawURL's host, GETs rawURL and checks the answer.
func fetch(ctx context.Context, out io.Writer, rawURL, wantSHA string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if net.ParseIP(u.Hostname()) == nil {
		addrs, err := net.DefaultResolver.LookupHost(ctx, u.Hostname())
		if err != nil {
			return fmt.Errorf("resolve: %w", err)
		}
		fmt.Fprintf(out, "fetch: %s is %v\n", u.Hostname(), addrs)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: body: %w", rawURL, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	elapsed := time.Since(start)
	if st := resp.TLS; st != nil {
		leaf := st.PeerCertificates[0]
		fmt.Fprintf(out, "fetch: %s, %s, certificate for %v issued by %q, verified\n",
			tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), leaf.DNSNames, leaf.Issuer.CommonName)
	}
	fmt.Fprintf(out, "fetch: GET %s: %s, %d bytes in %v (%.1f MB/s), sha256 %s\n",
		rawURL, resp.Status, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds()/1e6, sum)
	if wantSHA != "" && sum != wantSHA {
		return errors.New("the body's SHA-256 is not the one asked for")
	}
	return nil
}
