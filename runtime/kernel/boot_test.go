package kernel

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/govirtio/govirtio/internal/boottest"
)

// The boot tests build programs into images and boot them under QEMU
// (qemu.sh picks TCG or KVM), asserting on the serial output and the exit
// status.

func TestMain(m *testing.M) {
	code := m.Run()
	boottest.Cleanup()
	os.Exit(code)
}

func TestBootHello(t *testing.T) {
	img := boottest.BuildImage(t, "examples/hello")
	for _, mem := range []string{"256M", "64M", "16M"} {
		t.Run(mem, func(t *testing.T) {
			out, status := boottest.Boot(t, img, "-m", mem, "-append", "first second")
			if status != 0 {
				t.Errorf("exit status %d, want 0", status)
			}
			if got := boottest.LastLine(out); got != "hello: ok" {
				t.Errorf("last line %q, want %q", got, "hello: ok")
			}
			if !strings.Contains(out, `args ["first" "second"]`) {
				t.Errorf("the command line did not reach os.Args")
			}
		})
	}
}

func TestBootBehaviour(t *testing.T) {
	img := boottest.BuildImage(t, "runtime/kernel/testdata/bootcheck")
	tests := []struct {
		name   string
		args   []string
		status int      // expected exit status; -1: any non-zero
		want   []string // regular expressions the output must match
	}{
		{"exit status reaches the host", []string{"-append", "exit"}, 7, []string{`bootcheck: exiting with 7`}},
		{"1 GiB allocated in 256 MiB completes", []string{"-m", "256M", "-append", "alloc"}, 0,
			[]string{`allocated 1024 MiB`, `bootcheck: alloc ok`}},
		{"nil dereference in a goroutine is recovered", []string{"-append", "nilderef"}, 0,
			[]string{`recovered: runtime error: invalid memory address or nil pointer dereference`, `bootcheck: nilderef ok`}},
		{"spinning goroutine does not stop the GC", []string{"-append", "spin"}, 0, []string{`bootcheck: spin ok`}},
		{"fault on a kernel address is dumped and decoded", []string{"-append", "badaddr"}, -1,
			[]string{`kernel: page fault on a kernel address`, `rip\s+0x[0-9a-f]{16}`, `code\s+([0-9a-f]{2} )+`,
				`crash: faulting instruction at 0x[0-9a-f]+: MOV`}},
		{"a goroutine waiting on an interrupt line wakes for each interrupt", []string{"-append", "irq"}, 0,
			[]string{`MSI address 0xfee00000 data 0x50`, `waiter saw 3 interrupts`, `bootcheck: irq ok`}},
		{"drivers reach DMA memory, registers and ports", []string{"-append", "machine"}, 0,
			[]string{`DMA, registers and ports work`, `bootcheck: machine ok`}},
		{"the clock is read through the vDSO, without system calls", []string{"-append", "clock"}, 0,
			[]string{`bootcheck: clock ok`}},
		{"unrecovered panic exits non-zero", []string{"-append", "panic"}, 2,
			[]string{`panic: bootcheck: deliberate panic`, `goroutine 1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, status := boottest.Boot(t, img, tc.args...)
			switch {
			case tc.status == -1 && (status == 0 || status >= 124):
				t.Errorf("exit status %d, want a guest failure status", status)
			case tc.status >= 0 && status != tc.status:
				t.Errorf("exit status %d, want %d", status, tc.status)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %q", w)
				}
			}
		})
	}
}

// Go's CPU profiler works in an image: runtime/pprof over about a second
// of a CPU-bound loop yields about 100 samples (100 Hz), nearly all in the
// loop. Without SIGPROF the profile is empty; with samples taken at system
// calls rather than where the timer interrupted, the loop is not on top.
func TestBootCPUProfileSamplesTheHotLoop(t *testing.T) {
	img := boottest.BuildImage(t, "runtime/kernel/testdata/bootcheck")
	out, status := boottest.Boot(t, img, "-append", "profile")
	if status != 0 {
		t.Fatalf("exit status %d, want 0", status)
	}
	_, rest, ok := strings.Cut(out, "bootcheck: profile begin\n")
	enc, _, ok2 := strings.Cut(rest, "bootcheck: profile end")
	if !ok || !ok2 {
		t.Fatal("no profile between the markers")
	}
	prof, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(enc), ""))
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	if err := os.WriteFile(file, prof, 0o644); err != nil {
		t.Fatal(err)
	}
	elf := strings.TrimSuffix(img, ".img") + ".elf"
	top, err := exec.Command("go", "tool", "pprof", "-sample_index=samples", "-top", elf, file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, top)
	}
	t.Logf("go tool pprof -top:\n%s", top)
	m := regexp.MustCompile(`Total samples = (\d+)`).FindSubmatch(top)
	if m == nil {
		t.Fatal("no sample count in pprof's output")
	}
	total, _ := strconv.Atoi(string(m[1]))
	// 1 s at 100 Hz is 100 samples; TCG's timing can lose a few, not 70.
	if total < 30 {
		t.Errorf("%d samples in about 1 s of CPU, want at least 30", total)
	}
	// The first row under the header is the top function by flat samples.
	row := regexp.MustCompile(`(?m)^\s*(\d+)\s+\S+%\s+\S+%\s+\d+\s+\S+%\s+(\S+)$`).FindSubmatch(top)
	if row == nil {
		t.Fatal("no rows in pprof's output")
	}
	flat, _ := strconv.Atoi(string(row[1]))
	if fn := string(row[2]); fn != "main.hotLoop" || flat*2 < total {
		t.Errorf("top function %s with %d of %d samples, want main.hotLoop with at least half", fn, flat, total)
	}
}
