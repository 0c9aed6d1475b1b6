package network_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtionet"
	"github.com/govirtio/govirtio/internal/boottest"
)

// The boot tests run examples/httpd under QEMU against QEMU's own
// virtio-net-pci device with user networking: DHCP from QEMU, an HTTP GET
// from the host, and a 64 MiB download and upload checked with SHA-256 on
// both ends, in a matrix of device configurations (about 15 s each under
// TCG; -short moves 4 MiB instead).

func TestMain(m *testing.M) {
	code := m.Run()
	boottest.Cleanup()
	os.Exit(code)
}

// transferSize is what each direction moves: 64 MiB, or 4 MiB with -short.
func transferSize() int64 {
	if testing.Short() {
		return 4 << 20
	}
	return 64 << 20
}

var offloadsOff = "csum=off,guest_csum=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off," +
	"guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off"

// matrix lists the device configurations, each with what GET / must and
// must not show of what was negotiated. short entries move 4 MiB each way
// even without -short: variations whose full transfer would add time
// without adding coverage the 64 MiB rows do not already give.
var matrix = []struct {
	name          string
	args          []string
	want, notWant []string
	short         bool
}{
	{"transitional", nil, []string{"interface modern", "MRG_RXBUF", "EVENT_IDX", "interrupts msix"}, nil, false},
	{"legacy", []string{"-dev", "legacy"}, []string{"interface legacy", "MRG_RXBUF"}, []string{"VERSION_1"}, false},
	{"modern", []string{"-dev", "modern"}, []string{"interface modern", "VERSION_1"}, nil, false},
	{"mrg_rxbuf=off", []string{"-props", "mrg_rxbuf=off"}, nil, []string{"MRG_RXBUF"}, false},
	{"offloads off", []string{"-props", offloadsOff}, nil, []string{"CSUM", "TSO"}, false},
	{"event_idx=off", []string{"-props", "event_idx=off"}, nil, []string{"EVENT_IDX"}, false},
	{"indirect_desc=off", []string{"-props", "indirect_desc=off"}, nil, []string{"INDIRECT_DESC"}, false},
	{"ctrl_vq=off", []string{"-props", "ctrl_vq=off"}, nil, []string{"CTRL_VQ", "CTRL_RX", "GUEST_ANNOUNCE"}, false},
	{"machine q35", []string{"-M", "q35"}, nil, nil, false},
	{"machine pc", []string{"-M", "pc"}, nil, nil, false},
	{"INTx instead of MSI-X", []string{"-M", "pc", "-append", "virtio_net.intx=1"}, []string{"interrupts intx"}, nil, false},
	// Packed virtqueues (VIRTIO_F_RING_PACKED) against QEMU's device.
	{"packed=on", []string{"-props", "packed=on"}, []string{"RING_PACKED", "EVENT_IDX", "INDIRECT_DESC", "MRG_RXBUF"}, nil, false},
	{"packed=on,mrg_rxbuf=off", []string{"-props", "packed=on,mrg_rxbuf=off"}, []string{"RING_PACKED"}, []string{"MRG_RXBUF"}, true},
	{"packed=on,event_idx=off", []string{"-props", "packed=on,event_idx=off"}, []string{"RING_PACKED"}, []string{"EVENT_IDX"}, true},
	{"packed=on,indirect_desc=off", []string{"-props", "packed=on,indirect_desc=off"}, []string{"RING_PACKED"}, []string{"INDIRECT_DESC"}, true},
	{"packed=on declined with virtio_net.packed=0", []string{"-props", "packed=on", "-append", "virtio_net.packed=0"}, nil, []string{"RING_PACKED"}, true},
	// QEMU's microvm: no PCI bus, the NIC on virtio-mmio, interrupting on
	// a level-triggered I/O APIC line. With acpi=off it is found through
	// the virtio_mmio.device= word QEMU adds to the command line, on line
	// 12 of the one I/O APIC. QEMU 7.2 gives virtio-mmio the legacy layout
	// unless told otherwise.
	{"microvm virtio-mmio legacy", []string{"-M", "microvm,acpi=off"}, []string{"device virtio-mmio v1", "interface legacy", "interrupts line 12"}, []string{"VERSION_1"}, false},
	{"microvm virtio-mmio modern", []string{"-M", "microvm,acpi=off", "-dev", "modern"}, []string{"device virtio-mmio v2", "interface modern", "VERSION_1", "interrupts line 12"}, nil, false},
	{"microvm virtio-mmio packed=on", []string{"-M", "microvm,acpi=off", "-dev", "modern", "-props", "packed=on"}, []string{"device virtio-mmio v2", "RING_PACKED"}, nil, false},
	// With ACPI on (microvm's default) the DSDT declares the transport
	// (\_SB_.VR23, the last of 24 slots) and its line is GSI 47, on the
	// second I/O APIC the MADT lists.
	{"microvm ACPI virtio-mmio legacy", []string{"-M", "microvm"}, []string{"device virtio-mmio v1", `acpi \_SB_.VR23`, "interface legacy", "interrupts line 47"}, []string{"VERSION_1"}, true},
	{"microvm ACPI virtio-mmio modern", []string{"-M", "microvm", "-dev", "modern"}, []string{"device virtio-mmio v2", `acpi \_SB_.VR23`, "interface modern", "VERSION_1", "interrupts line 47"}, nil, true},
}

func TestHTTPOverVirtioNet(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/httpd")
	for _, c := range matrix {
		t.Run(c.name, func(t *testing.T) {
			port := boottest.FreePort(t)
			args := append([]string{"-net", "user", "-fwd", fmt.Sprint(port)}, c.args...)
			g := boottest.Start(t, img, args...)
			g.WaitFor(`httpd: serving on`, 3*time.Minute)
			firstAnswer := g.Since()
			base := fmt.Sprintf("http://127.0.0.1:%d", port)

			body := get(t, base+"/")
			if !strings.Contains(body, "features ") || !strings.Contains(body, "link up") {
				t.Errorf("GET / answered:\n%s", body)
			}
			features := body[strings.Index(body, "features "):]
			features = features[:strings.IndexByte(features, '\n')]
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET / does not show %q:\n%s", w, body)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(features, w) || strings.Contains(body, "interface "+w) {
					t.Errorf("GET / shows %q, which this configuration turns off:\n%s", w, body)
				}
			}
			answered := g.Since()

			n := transferSize()
			if c.short {
				n = min(n, 4<<20)
			}
			down := download(t, base, n)
			up := upload(t, base, n)
			vars := get(t, base+"/debug/vars")
			for _, drop := range []string{`"RxDropShort":0`, `"RxDropNumBuffers":0`, `"RxDropBadLength":0`, `"TxDropPhysError":0`} {
				if !strings.Contains(strings.ReplaceAll(vars, " ", ""), drop) {
					t.Errorf("counter not zero: want %s in %s", drop, vars)
				}
			}
			// Packets reach the program through interrupts that wake its
			// threads, including from a halted CPU.
			var kv struct {
				Kernel struct{ InterruptWakes, IdleWakeups uint64 }
			}
			if err := json.Unmarshal([]byte(vars), &kv); err != nil {
				t.Errorf("/debug/vars: %v", err)
			} else if kv.Kernel.InterruptWakes == 0 || kv.Kernel.IdleWakeups == 0 {
				t.Errorf("kernel counters %+v: interrupts woke no thread", kv.Kernel)
			}
			t.Logf("%s: serving %v after start, first answer %v; %d MiB down %.1f MB/s, up %.1f MB/s",
				c.name, firstAnswer.Round(time.Millisecond), answered.Round(time.Millisecond), n>>20, down, up)
		})
	}
}

// tryGet returns the body of url, or "" on any failure.
func tryGet(url string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// pattern reproduces httpd's /bytes stream: byte i is i mod 251.
func pattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// download fetches n bytes and compares their SHA-256 with the pattern's;
// it returns MB/s.
func download(t *testing.T, base string, n int64) float64 {
	t.Helper()
	want := sha256.Sum256(pattern(n))
	c := http.Client{Timeout: 10 * time.Minute}
	start := time.Now()
	resp, err := c.Get(fmt.Sprintf("%s/bytes?n=%d", base, n))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil || got != n {
		t.Fatalf("download: %d of %d bytes, %v", got, n, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("download: SHA-256 %x, want %x", h.Sum(nil), want)
	}
	return float64(n) / 1e6 / time.Since(start).Seconds()
}

// upload posts n random bytes and compares the guest's SHA-256 with ours.
func upload(t *testing.T, base string, n int64) float64 {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	want := sha256.Sum256(data)
	c := http.Client{Timeout: 10 * time.Minute}
	start := time.Now()
	resp, err := c.Post(base+"/sha256", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(b)); got != hex.EncodeToString(want[:]) {
		t.Fatalf("upload: guest's SHA-256 %q, want %x", got, want)
	}
	return float64(n) / 1e6 / time.Since(start).Seconds()
}

// TestLinkState turns the link off and on with QEMU's set_link (through
// QMP) and checks that the guest sees both and traffic resumes.
func TestLinkState(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/httpd")
	port := boottest.FreePort(t)
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	g := boottest.Start(t, img, "-net", "user", "-fwd", fmt.Sprint(port), "--",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	g.WaitFor(`httpd: serving on`, 3*time.Minute)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get(t, base+"/")

	qmp := dialQMP(t, sock)
	qmp.command(t, `{"execute":"set_link","arguments":{"name":"n0","up":false}}`)
	g.WaitFor(`network: link down`, time.Minute)
	qmp.command(t, `{"execute":"set_link","arguments":{"name":"n0","up":true}}`)
	g.WaitFor(`network: link up`, time.Minute)
	if body := get(t, base+"/"); !strings.Contains(body, "link up") {
		t.Errorf("after the link came back, GET / answered:\n%s", body)
	}
	if vars := strings.ReplaceAll(get(t, base+"/debug/vars"), " ", ""); !strings.Contains(vars, `"LinkChanges":2`) {
		t.Errorf("want LinkChanges 2 (down, up) in %s", vars)
	}
	download(t, base, 1<<20)
}

// TestGuestAnnounce asks the device for an announcement as after a live
// migration (QMP announce-self: QEMU sets VIRTIO_NET_S_ANNOUNCE and raises
// a configuration interrupt) and checks, in a capture of the NIC's traffic,
// that the guest sent a gratuitous ARP for its address and acknowledged.
func TestGuestAnnounce(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/httpd")
	port := boottest.FreePort(t)
	dir := t.TempDir()
	sock, dump := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "n0.pcap")
	g := boottest.Start(t, img, "-net", "user", "-fwd", fmt.Sprint(port), "--",
		"-qmp", "unix:"+sock+",server=on,wait=off", "-object", "filter-dump,id=dump0,netdev=n0,file="+dump)
	g.WaitFor(`httpd: serving on`, 3*time.Minute)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if body := get(t, base+"/"); !strings.Contains(body, "GUEST_ANNOUNCE") {
		t.Fatalf("GUEST_ANNOUNCE not negotiated:\n%s", body)
	}

	qmp := dialQMP(t, sock)
	qmp.command(t, `{"execute":"announce-self","arguments":{"initial":50,"max":550,"rounds":1,"step":100}}`)
	g.WaitFor(`network: announced 10.0.2.15/24 from .* \(1 frames\)`, time.Minute)
	var v struct{ Virtionet virtionet.Stats }
	for deadline := time.Now().Add(time.Minute); v.Virtionet.Announces == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the announcement was not acknowledged: %+v", v.Virtionet)
		}
		if err := json.Unmarshal([]byte(get(t, base+"/debug/vars")), &v); err != nil {
			t.Fatal(err)
		}
	}

	// The capture's frames (pcap: a 24-byte file header, then a 16-byte
	// header per record whose third word is the captured length).
	mac := []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	ip := []byte{10, 0, 2, 15}
	var found bool
	for deadline := time.Now().Add(30 * time.Second); !found; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no gratuitous ARP from %x for %v in %s", mac, ip, dump)
		}
		b, _ := os.ReadFile(dump)
		for off := 24; off+16 <= len(b); {
			n := int(binary.LittleEndian.Uint32(b[off+8:]))
			f := b[off+16 : min(off+16+n, len(b))]
			off += 16 + n
			// Ethernet broadcast from the guest, ARP request, sender and
			// target protocol addresses both the guest's.
			if len(f) >= 42 && bytes.Equal(f[6:12], mac) && binary.BigEndian.Uint16(f[12:]) == 0x0806 &&
				binary.BigEndian.Uint16(f[20:]) == 1 && bytes.Equal(f[28:32], ip) && bytes.Equal(f[38:42], ip) {
				found = true
			}
		}
	}
}

// TestLinkFlapsDuringADownload takes the link down five times during a
// download (QMP set_link), for 0.8 s after 0.2-0.6 s of traffic each time,
// so that the flaps land at different points of the connection's
// recovery: the download completes intact, the
// server keeps serving, and the connections that went through
// retransmission timeouts while the link was down get a fresh congestion
// state once it is back (CongestionRestarts), rather than crawling on with
// the ssthresh of 2 that repeated timeouts leave in netstack.
func TestLinkFlapsDuringADownload(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/httpd")
	port := boottest.FreePort(t)
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	g := boottest.Start(t, img, "-net", "user", "-fwd", fmt.Sprint(port), "--",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	g.WaitFor(`httpd: serving on`, 3*time.Minute)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	qmp := dialQMP(t, sock)

	n := transferSize() // about 5 s over user networking under TCG
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		defer func() { done <- time.Since(start) }() // also when download fails the test
		download(t, base, n)
	}()
	var took time.Duration
	flaps := 0
	gaps := []time.Duration{200, 600, 300, 500, 400}
flapping:
	for ; flaps < len(gaps); flaps++ {
		select {
		case took = <-done:
			break flapping
		case <-time.After(gaps[flaps] * time.Millisecond):
		}
		qmp.command(t, `{"execute":"set_link","arguments":{"name":"n0","up":false}}`)
		time.Sleep(800 * time.Millisecond)
		qmp.command(t, `{"execute":"set_link","arguments":{"name":"n0","up":true}}`)
	}
	if flaps == len(gaps) {
		took = <-done
	}
	if t.Failed() {
		return
	}
	var v struct {
		Network struct{ CongestionRestarts, TCPTimeouts uint64 }
	}
	if err := json.Unmarshal([]byte(get(t, base+"/debug/vars")), &v); err != nil {
		t.Fatal(err)
	}
	// A flap shorter than the retransmission timeout (which grows with the
	// RTT on a loaded host) costs no timeout and needs no restart; one
	// that timed out must have been restarted.
	if v.Network.TCPTimeouts > 0 && v.Network.CongestionRestarts == 0 {
		t.Errorf("%d flaps during the download, %d retransmission timeouts, no congestion restart", flaps, v.Network.TCPTimeouts)
	}
	t.Logf("%d MiB with %d flaps of 0.8 s: %v; %d retransmission timeouts, %d congestion restarts", n>>20, flaps, took.Round(time.Millisecond), v.Network.TCPTimeouts, v.Network.CongestionRestarts)
	download(t, base, 1<<20)
}

type qmpConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialQMP(t *testing.T, sock string) *qmpConn {
	t.Helper()
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("QMP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	q.read(t) // greeting
	q.command(t, `{"execute":"qmp_capabilities"}`)
	return q
}

func (q *qmpConn) read(t *testing.T) map[string]any {
	t.Helper()
	q.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("QMP read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("QMP: %v in %q", err, line)
	}
	return m
}

// command sends cmd and waits for its return, skipping events.
func (q *qmpConn) command(t *testing.T, cmd string) {
	t.Helper()
	if _, err := q.c.Write([]byte(cmd + "\n")); err != nil {
		t.Fatalf("QMP write: %v", err)
	}
	for {
		m := q.read(t)
		if e, ok := m["error"]; ok {
			t.Fatalf("QMP %s: %v", cmd, e)
		}
		if _, ok := m["return"]; ok {
			return
		}
	}
}

// TestEcho boots examples/echo and checks TCP and UDP echo through QEMU's
// forwarding.
func TestEcho(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/echo")
	port := boottest.FreePort(t)
	fwd := fmt.Sprintf("127.0.0.1:%d-:7", port)
	g := boottest.Start(t, img, "-net", "user", "-fwd", fmt.Sprint(boottest.FreePort(t)),
		"-hostfwd", "tcp:"+fwd, "-hostfwd", "udp:"+fwd)
	g.WaitFor(`echo: TCP and UDP port 7`, 3*time.Minute)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("govirtio echo "), 10000) // several segments
	go c.Write(msg)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("TCP echo: %v (equal %v)", err, bytes.Equal(got, msg))
	}

	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	buf := make([]byte, 2048)
	for i := 0; ; i++ { // UDP may be lost: retry a few times
		u.Write([]byte("ping over UDP"))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := u.Read(buf)
		if err == nil {
			if string(buf[:n]) != "ping over UDP" {
				t.Fatalf("UDP echo returned %q", buf[:n])
			}
			break
		}
		if i == 5 {
			t.Fatalf("UDP echo: %v", err)
		}
	}
}

// TestRecoveryFromDeviceError makes QEMU's virtio-net stop on an error in
// the middle of a download (httpd posts a TX chain without a readable
// header, which QEMU answers with DEVICE_NEEDS_RESET) and checks that the
// driver resets the device and the download completes intact over the
// same connection.
func TestRecoveryFromDeviceError(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/httpd")
	port := boottest.FreePort(t)
	g := boottest.Start(t, img, "-net", "user", "-fwd", fmt.Sprint(port), "-append", "debug.inject=1")
	g.WaitFor(`httpd: serving on`, 3*time.Minute)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	n := transferSize()
	want := sha256.Sum256(pattern(n))
	c := http.Client{Timeout: 10 * time.Minute}
	resp, err := c.Get(fmt.Sprintf("%s/bytes?n=%d", base, n))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	head, err := io.CopyN(h, resp.Body, n/8)
	if err != nil {
		t.Fatalf("download: %d bytes, %v", head, err)
	}
	inj, err := c.Post(base+"/debug/inject-tx-fault", "text/plain", nil)
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	inj.Body.Close()
	if inj.StatusCode != http.StatusOK {
		t.Fatalf("inject: %s", inj.Status)
	}
	g.WaitFor(`virtionet: the device is running again`, time.Minute)
	rest, err := io.Copy(h, resp.Body)
	if err != nil || head+rest != n {
		t.Fatalf("download: %d of %d bytes, %v", head+rest, n, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("download: SHA-256 %x, want %x", h.Sum(nil), want)
	}
	var v struct{ Virtionet virtionet.Stats }
	if err := json.Unmarshal([]byte(get(t, base+"/debug/vars")), &v); err != nil {
		t.Fatal(err)
	}
	if s := v.Virtionet; s.NeedsReset == 0 || s.Recoveries != 1 || s.RecoveryFailures != 0 {
		t.Errorf("NeedsReset %d Recoveries %d RecoveryFailures %d, want >0, 1, 0", s.NeedsReset, s.Recoveries, s.RecoveryFailures)
	}
	if !strings.Contains(g.Output(), "DEVICE_NEEDS_RESET") {
		t.Errorf("the console does not say why the device was reset:\n%s", g.Output())
	}
	download(t, base, 1<<20)
}

// TestStartFailureLeavesNothingRunning boots a program whose
// network.Start finds the NIC but no DHCP server (QEMU's user networking
// with IPv4 off): Start must fail and stop everything it started.
func TestStartFailureLeavesNothingRunning(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "network/testdata/startfail")
	out, status := boottest.Boot(t, img, "-net", "none", "--",
		"-netdev", "user,id=n0,ipv4=off", "-device", "virtio-net-pci,netdev=n0")
	if status != 0 || !strings.Contains(out, "startfail: ok") {
		t.Errorf("exit status %d:\n%s", status, out)
	}
}

// TestLeaseWritesResolverFiles: after a DHCP lease the kernel's
// /etc/resolv.conf and /etc/hosts describe it (publishResolver).
func TestLeaseWritesResolverFiles(t *testing.T) {
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "network/testdata/leasefiles")
	out, status := boottest.Boot(t, img, "-net", "user")
	if status != 0 || boottest.LastLine(out) != "leasefiles: ok" {
		t.Errorf("exit status %d, last line %q; want 0 and %q", status, boottest.LastLine(out), "leasefiles: ok")
	}
}
