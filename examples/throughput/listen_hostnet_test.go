//go:build hostnet

package main

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	tick := time.Second / userHZ
	tests := []struct {
		name        string
		line        string
		busy, total time.Duration
		wantErr     bool
	}{
		{name: "busy is user nice system irq softirq steal, total adds idle and iowait",
			line: "cpu  100 2 30 5000 7 4 50 1 0 0", busy: 187 * tick, total: 5194 * tick},
		{name: "a kernel without the guest columns",
			line: "cpu 1 0 1 10 0 0 0 0", busy: 2 * tick, total: 12 * tick},
		{name: "a single CPU's line is not the machine's", line: "cpu0 1 0 1 10 0 0 0 0", wantErr: true},
		{name: "a short line is an error", line: "cpu 1 2 3 4", wantErr: true},
		{name: "a negative time is an error", line: "cpu 1 0 -1 10 0 0 0 0", wantErr: true},
		{name: "an empty file is an error", line: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, total, err := parseProcStatCPU(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if busy != tt.busy || total != tt.total {
				t.Errorf("busy %v total %v, want %v and %v", busy, total, tt.busy, tt.total)
			}
		})
	}
}

// This machine's own /proc/stat reads, and adds up.
func TestCPUTimeReadsProcStat(t *testing.T) {
	busy, total, err := hostnet{}.CPUTime()
	if err != nil {
		t.Skipf("no /proc/stat: %v", err)
	}
	if busy <= 0 || total < busy {
		t.Errorf("busy %v, total %v", busy, total)
	}
}

// fakePlatform reports fixed CPU times.
type fakePlatform struct {
	hostnet
	busy, total time.Duration
}

func (f fakePlatform) CPUTime() (busy, total time.Duration, err error) { return f.busy, f.total, nil }

func TestCPUHandlerAnswersBusyAndTotalInNanoseconds(t *testing.T) {
	h := handler(fakePlatform{busy: 1500 * time.Millisecond, total: 4 * time.Second})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/cpu", nil))
	if got, want := w.Body.String(), "busy_ns 1500000000 total_ns 4000000000\n"; w.Code != 200 || got != want {
		t.Errorf("GET /cpu: %d %q, want 200 %q", w.Code, got, want)
	}
}
