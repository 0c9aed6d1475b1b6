package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// cpuServer serves GET /cpu with the given status and body.
func cpuServer(t *testing.T, status int, body string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cpu", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func TestReadCPU(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    CPUTime
		wantErr bool
	}{
		{name: "the guest's line is a reading", status: 200, body: "busy_ns 123 total_ns 456\n", want: CPUTime{Busy: 123, Total: 456}},
		{name: "a line without its newline is a reading", status: 200, body: "busy_ns 0 total_ns 7", want: CPUTime{Busy: 0, Total: 7}},
		{name: "all busy is a reading", status: 200, body: "busy_ns 9 total_ns 9\n", want: CPUTime{Busy: 9, Total: 9}},
		{name: "more busy than in all is an error", status: 200, body: "busy_ns 10 total_ns 9\n", wantErr: true},
		{name: "a negative time is an error", status: 200, body: "busy_ns -1 total_ns 9\n", wantErr: true},
		{name: "the fields swapped are an error", status: 200, body: "total_ns 456 busy_ns 123\n", wantErr: true},
		{name: "a missing total is an error", status: 200, body: "busy_ns 123\n", wantErr: true},
		{name: "anything after the line is an error", status: 200, body: "busy_ns 1 total_ns 2 idle_ns 1\n", wantErr: true},
		{name: "a number that is not one is an error", status: 200, body: "busy_ns 1e3 total_ns 2000\n", wantErr: true},
		{name: "a server error is an error", status: 500, body: "no /proc/stat\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := cpuServer(t, tt.status, tt.body)
			start := time.Now().UnixNano()
			got, err := readCPU(url, 10*time.Second)
			end := time.Now().UnixNano()
			if (err != nil) != tt.wantErr {
				t.Fatalf("readCPU: err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got.At < start || got.At > end {
				t.Errorf("reading arrived at %d, outside the call (%d to %d)", got.At, start, end)
			}
			if got.Busy != tt.want.Busy || got.Total != tt.want.Total {
				t.Errorf("readCPU = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadCPUWithoutAServerFails(t *testing.T) {
	// A closed server: nothing listens at its address any more.
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close()
	if _, err := readCPU(url, 5*time.Second); err == nil {
		t.Error("readCPU of a closed port succeeded")
	}
}
