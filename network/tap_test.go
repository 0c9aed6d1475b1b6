package network_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govirtio/govirtio/internal/boottest"
)

// TestOffloadsOverTap runs httpd on a tap device (in a network namespace
// the test creates) instead of QEMU's user networking: there QEMU's
// virtio-net offers the checksum and TSO offloads, so this is where the
// driver's offload paths meet the real device, over split rings and over
// packed ones (packed=on: 64 KiB TSO chains through packed indirect
// tables). The client runs in the namespace too: this test binary,
// re-executed as TestTapClient.
func TestOffloadsOverTap(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string // a feature GET / must show
	}{
		{"split", nil, "VERSION_1"},
		{"packed=on", []string{"-props", "packed=on"}, "RING_PACKED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := boottest.TapNetns(t)
			img := boottest.BuildImage(t, "examples/httpd")
			args := append([]string{"-net", "tap", "-tap", "gvtap0", "-append", "ip=10.0.3.15/24 gw=10.0.3.1"}, c.args...)
			g := boottest.StartInNetns(t, ns, img, args...)
			g.WaitFor(`httpd: serving on`, 3*time.Minute)

			client := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestTapClient$", "-test.v")
			client.Env = append(os.Environ(), "GOVIRTIO_TAP_CLIENT=http://10.0.3.15",
				"GOVIRTIO_TAP_SIZE="+strconv.FormatInt(transferSize(), 10), "GOVIRTIO_TAP_FEATURE="+c.want)
			out, err := client.CombinedOutput()
			t.Logf("client in %s:\n%s", ns, out)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
		})
	}
}

// TestTapClient is the client half of TestOffloadsOverTap; it runs only
// when that test starts it inside the namespace.
func TestTapClient(t *testing.T) {
	base := os.Getenv("GOVIRTIO_TAP_CLIENT")
	if base == "" {
		t.Skip("run by TestOffloadsOverTap")
	}
	n, _ := strconv.ParseInt(os.Getenv("GOVIRTIO_TAP_SIZE"), 10, 64)
	var body string
	for i := 0; ; i++ { // the guest may still be resolving the gateway
		body = tryGet(base + "/")
		if body != "" || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body == "" {
		t.Fatalf("no answer from %s", base)
	}
	for _, f := range []string{"CSUM", "GUEST_CSUM", "HOST_TSO4", "GUEST_TSO4", os.Getenv("GOVIRTIO_TAP_FEATURE")} {
		if !strings.Contains(body, f) {
			t.Errorf("feature %s not negotiated over tap:\n%s", f, body)
		}
	}
	down := download(t, base, n)
	up := upload(t, base, n)
	vars := strings.ReplaceAll(get(t, base+"/debug/vars"), " ", "")
	for _, counter := range []string{"TxGSOPackets", "RxGSOPackets", "RxChecksumValidated", "TxCsumOffload"} {
		i := strings.Index(vars, `"`+counter+`":`)
		if i < 0 {
			t.Errorf("no %s counter", counter)
			continue
		}
		v := vars[i+len(counter)+3:]
		if end := strings.IndexAny(v, ",}"); end >= 0 {
			v = v[:end]
		}
		if v == "0" {
			t.Errorf("%s is 0: the offload was never used against QEMU's device", counter)
		}
	}
	t.Logf("over tap with offloads: %d MiB down %.1f MB/s, up %.1f MB/s", n>>20, down, up)
}

// TestServesUnderMemoryPressure keeps 400 keep-alive connections busy
// against httpd in 24 MiB of RAM (about 9 MiB free for the program once it
// serves), over tap so that the load is not throttled by QEMU's user
// networking: the listener holds back the connections the memory cannot
// carry (AcceptWaits) instead of the guest running out of memory and
// losing all of them. Before, the same load killed the guest ("out of
// memory backing a page"). The client is this test binary, re-executed in
// the namespace as TestPressureClient.
func TestServesUnderMemoryPressure(t *testing.T) {
	for _, c := range []struct {
		name, serving string
		build         func(t *testing.T) string
	}{
		// httpd listens through ListenTCP (listen.go), stdhttpd through
		// the kernel's sockets (socket.go): both shed load.
		{"httpd", `httpd: serving on`, func(t *testing.T) string { return boottest.BuildImage(t, "examples/httpd") }},
		{"stdhttpd", `stdhttpd: serving`, func(t *testing.T) string {
			return boottest.BuildWithMkimage(t, "examples/stdhttpd", "-files", "examples/stdhttpd/static")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := boottest.TapNetns(t)
			g := boottest.StartInNetns(t, ns, c.build(t), "-m", "24M", "-net", "tap", "-tap", "gvtap0", "-append", "ip=10.0.3.15/24 gw=10.0.3.1")
			g.WaitFor(c.serving, 3*time.Minute)
			client := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestPressureClient$", "-test.v")
			client.Env = append(os.Environ(), "GOVIRTIO_PRESSURE_CLIENT=http://10.0.3.15", "GOVIRTIO_PRESSURE_VARS="+strconv.FormatBool(c.name == "httpd"))
			out, err := client.CombinedOutput()
			t.Logf("client in %s:\n%s", ns, out)
			if strings.Contains(g.Output(), "out of memory") {
				t.Fatalf("the guest ran out of memory:\n%s", g.Output())
			}
			if err != nil {
				t.Fatalf("client: %v", err)
			}
		})
	}
}

func TestPressureClient(t *testing.T) {
	base := os.Getenv("GOVIRTIO_PRESSURE_CLIENT")
	if base == "" {
		t.Skip("run by TestServesUnderMemoryPressure")
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(10 * time.Second)
	for range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}} // a connection each
			defer c.CloseIdleConnections()
			for time.Now().Before(end) {
				resp, err := c.Get(base + "/bytes?n=2000")
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		t.Fatal("no request answered")
	}
	// After the load the server still answers.
	if body := get(t, base+"/bytes?n=10"); len(body) != 10 {
		t.Errorf("a request after the load got %d bytes", len(body))
	}
	if os.Getenv("GOVIRTIO_PRESSURE_VARS") != "true" {
		t.Logf("%d requests answered over 400 connections in 24 MiB", ok.Load())
		return
	}
	var v struct {
		Network struct{ AcceptWaits uint64 }
	}
	if err := json.Unmarshal([]byte(get(t, base+"/debug/vars")), &v); err != nil {
		t.Fatal(err)
	}
	if ok.Load() == 0 || v.Network.AcceptWaits == 0 {
		t.Errorf("%d requests answered, AcceptWaits %d: want both above 0", ok.Load(), v.Network.AcceptWaits)
	}
	t.Logf("%d requests answered over 400 connections in 24 MiB; %d accepts held back", ok.Load(), v.Network.AcceptWaits)
}

// TestLinkFlapsOverTap takes the link down for 0.8 s five times, at
// different moments, during a 256 MiB download over tap, where the guest
// sends as fast as it can and a flap costs retransmission timeouts (over
// user networking the transfer is too slow to have data in flight). The
// download completes intact, and the connections that timed out while the
// link was down get a fresh congestion state (CongestionRestarts) instead
// of crawling on with the ssthresh of 2 that repeated timeouts leave in
// netstack. The client is this binary, re-executed as TestFlapClient.
func TestLinkFlapsOverTap(t *testing.T) {
	ns := boottest.TapNetns(t)
	img := boottest.BuildImage(t, "examples/httpd")
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	g := boottest.StartInNetns(t, ns, img, "-net", "tap", "-tap", "gvtap0", "-append", "ip=10.0.3.15/24 gw=10.0.3.1", "--",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	g.WaitFor(`httpd: serving on`, 3*time.Minute)
	qmp := dialQMP(t, sock)

	client := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestFlapClient$", "-test.v")
	client.Env = append(os.Environ(), "GOVIRTIO_FLAP_CLIENT=http://10.0.3.15")
	var out bytes.Buffer
	client.Stdout, client.Stderr = &out, &out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Wait() }()
	var err error
	flaps := 0
flapping:
	for _, gap := range []time.Duration{300, 700, 400, 600, 500} {
		select {
		case err = <-done:
			break flapping
		case <-time.After(gap * time.Millisecond):
		}
		qmp.command(t, `{"execute":"set_link","arguments":{"name":"n0","up":false}}`)
		time.Sleep(800 * time.Millisecond)
		qmp.command(t, `{"execute":"set_link","arguments":{"name":"n0","up":true}}`)
		flaps++
	}
	if flaps == 5 {
		err = <-done
	}
	t.Logf("%d flaps; client in %s:\n%s", flaps, ns, out.String())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	if flaps == 0 {
		t.Fatalf("the download ended before the first flap")
	}
}

// TestFlapClient is the client half of TestLinkFlapsOverTap.
func TestFlapClient(t *testing.T) {
	base := os.Getenv("GOVIRTIO_FLAP_CLIENT")
	if base == "" {
		t.Skip("run by TestLinkFlapsOverTap")
	}
	for i := 0; tryGet(base+"/") == "" && i < 50; i++ {
		time.Sleep(100 * time.Millisecond) // the guest may still be resolving the gateway
	}
	start := time.Now()
	download(t, base, 256<<20)
	var v struct {
		Network struct{ CongestionRestarts, TCPTimeouts uint64 }
	}
	if err := json.Unmarshal([]byte(get(t, base+"/debug/vars")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Network.TCPTimeouts > 0 && v.Network.CongestionRestarts == 0 {
		t.Errorf("%d retransmission timeouts, no congestion restart", v.Network.TCPTimeouts)
	}
	t.Logf("256 MiB in %v; %d retransmission timeouts, %d congestion restarts", time.Since(start).Round(time.Millisecond), v.Network.TCPTimeouts, v.Network.CongestionRestarts)
}
