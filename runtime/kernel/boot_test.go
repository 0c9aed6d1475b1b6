package kernel

import (
	"os"
	"regexp"
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
