package network_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtionet"
	"github.com/govirtio/govirtio/internal/boottest"
)

// TestSoak keeps httpd busy for GOVIRTIO_SOAK (a duration; `make soak`
// sets it, default 10 minutes) and skips otherwise. Four clients send small
// requests without pause and one moves 16 MiB at a time, alternately down
// and up, each checked with SHA-256. Every minute it samples the guest's
// heap and the driver's counters. It fails on any failed or corrupted
// exchange, on any driver drop (nothing here injects a fault), and on a
// heap that grows without bound: the live heap of the last third of the
// samples all above twice the largest of the first third.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("GOVIRTIO_SOAK"))
	if testing.Short() {
		d = 0
	}
	if err != nil || d <= 0 {
		t.Skip("a soak runs only with GOVIRTIO_SOAK=DURATION (make soak)")
	}
	boottest.NeedQEMU(t)
	img := boottest.BuildImage(t, "examples/httpd")
	port := boottest.FreePort(t)
	// The guest outlives boottest's usual 300 s bound (qemu.sh takes the
	// last -timeout given).
	g := boottest.Start(t, img, "-net", "user", "-fwd", fmt.Sprint(port), "-timeout", fmt.Sprint(int(d.Seconds())+600))
	g.WaitFor(`httpd: serving on`, 3*time.Minute)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	end := time.Now().Add(d)
	var mu sync.Mutex
	counts := map[string]int{}
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		end = time.Now() // stop everyone at the next check
	}
	done := func() bool { mu.Lock(); defer mu.Unlock(); return time.Now().After(end) }
	count := func(what string) { mu.Lock(); counts[what]++; mu.Unlock() }
	client := &http.Client{Timeout: 2 * time.Minute}

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !done(); k++ {
				url := base + "/"
				if (i+k)%2 == 1 {
					url = fmt.Sprintf("%s/bytes?n=%d", base, 1+k%3000)
				}
				resp, err := client.Get(url)
				if err != nil {
					mu.Lock()
					fail("GET %s: %v", url, err)
					mu.Unlock()
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				count("small")
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		const n = 16 << 20
		want := sha256.Sum256(pattern(n))
		up := make([]byte, n)
		for k := 0; !done(); k++ {
			if k%2 == 0 {
				resp, err := client.Get(fmt.Sprintf("%s/bytes?n=%d", base, n))
				if err == nil {
					h := sha256.New()
					var got int64
					got, err = io.Copy(h, resp.Body)
					resp.Body.Close()
					if err == nil && (got != n || !bytes.Equal(h.Sum(nil), want[:])) {
						err = fmt.Errorf("%d bytes, SHA-256 %x", got, h.Sum(nil))
					}
				}
				if err != nil {
					mu.Lock()
					fail("download %d: %v", k, err)
					mu.Unlock()
					return
				}
				count("download")
				continue
			}
			rand.Read(up)
			sum := sha256.Sum256(up)
			resp, err := client.Post(base+"/sha256", "application/octet-stream", bytes.NewReader(up))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := strings.TrimSpace(string(b)); got != hex.EncodeToString(sum[:]) {
					err = fmt.Errorf("guest's SHA-256 %q", got)
				}
			}
			if err != nil {
				mu.Lock()
				fail("upload %d: %v", k, err)
				mu.Unlock()
				return
			}
			count("upload")
		}
	}()

	// The samples, once a minute (and once at the start).
	var heaps []uint64
	sample := func() {
		var v struct {
			Memstats  struct{ HeapAlloc, HeapSys, NumGC uint64 }
			Virtionet virtionet.Stats
			Kernel    struct{ Uptime, IdleTime uint64 }
		}
		if err := json.Unmarshal([]byte(get(t, base+"/debug/vars")), &v); err != nil {
			mu.Lock()
			fail("/debug/vars: %v", err)
			mu.Unlock()
			return
		}
		s := v.Virtionet
		mu.Lock()
		t.Logf("%v: heap %d KiB of %d, %d GCs; RX %d pkts, TX %d pkts, drops %d/%d, recoveries %d; requests %v",
			g.Since().Round(time.Second), v.Memstats.HeapAlloc>>10, v.Memstats.HeapSys>>10, v.Memstats.NumGC,
			s.RxPackets, s.TxPackets, s.RxDrops(), s.TxDrops(), s.Recoveries, counts)
		if s.RxDrops()+s.TxDrops()+s.TxDeviceErrors+s.Recoveries != 0 {
			fail("the driver dropped or recovered with no fault injected: %+v", s)
		}
		mu.Unlock()
		heaps = append(heaps, v.Memstats.HeapAlloc)
	}
	sample()
	for !done() {
		next := time.Now().Add(time.Minute)
		for time.Now().Before(next) && !done() {
			time.Sleep(time.Second)
		}
		sample()
	}
	wg.Wait()
	if third := len(heaps) / 3; third >= 2 {
		var firstMax uint64
		for _, h := range heaps[:third] {
			firstMax = max(firstMax, h)
		}
		grew := true
		for _, h := range heaps[len(heaps)-third:] {
			grew = grew && h > 2*firstMax
		}
		if grew {
			t.Errorf("the guest's heap grew without bound: %v (bytes, one a minute)", heaps)
		}
	}
	if counts["download"] == 0 || counts["upload"] == 0 {
		t.Errorf("no transfer completed in %v: %v", d, counts)
	}
}
