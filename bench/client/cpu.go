package main

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CPUTime is one reading of a guest's CPU time since boot, from
// examples/throughput's GET /cpu.
type CPUTime struct {
	// Busy is the time the guest's CPU did anything but idle, in ns of
	// the guest's clock.
	Busy int64
	// Total is the time in all, busy and idle, in ns of the guest's clock.
	Total int64
	// At is when the reading arrived, by this machine's clock (Unix ns).
	// The guest's clock may run at another rate (a TSC calibrated while
	// QEMU was held off the host's CPU counts slow), so two readings
	// compare Total with At to put the busy time in real time.
	At int64
}

// readCPU fetches GET base/cpu ("busy_ns B total_ns T") and returns the
// reading; timeout bounds the request.
func readCPU(base string, timeout time.Duration) (CPUTime, error) {
	url := base + "/cpu"
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return CPUTime{}, fmt.Errorf("read %s: %w", url, err)
	}
	resp, err := httpDo(req, timeout)
	at := time.Now().UnixNano()
	if err != nil {
		return CPUTime{}, fmt.Errorf("read %s: %w", url, err)
	}
	defer resp.Body.Close()
	// One short line; anything much longer is not one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return CPUTime{}, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return CPUTime{}, fmt.Errorf("read %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	c, err := parseCPU(string(body))
	if err != nil {
		return CPUTime{}, fmt.Errorf("read %s: %w", url, err)
	}
	c.At = at
	return c, nil
}

// parseCPU reads the body of GET /cpu: one line, "busy_ns B total_ns T".
func parseCPU(s string) (CPUTime, error) {
	f := strings.Fields(s)
	if len(f) != 4 || f[0] != "busy_ns" || f[2] != "total_ns" {
		return CPUTime{}, fmt.Errorf("%q is not \"busy_ns B total_ns T\"", strings.TrimSpace(s))
	}
	busy, err1 := strconv.ParseInt(f[1], 10, 64)
	total, err2 := strconv.ParseInt(f[3], 10, 64)
	if err := cmp.Or(err1, err2); err != nil {
		return CPUTime{}, fmt.Errorf("%q: %w", strings.TrimSpace(s), err)
	}
	if busy < 0 || total < busy {
		return CPUTime{}, fmt.Errorf("busy %d ns of %d in all is not a CPU time", busy, total)
	}
	return CPUTime{Busy: busy, Total: total}, nil
}
