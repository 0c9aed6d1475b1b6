package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of the repository's qemu.sh live here because mkimage and
// qemu.sh are the two halves of "boot a Go program": the boot test needs both.

// qemuSh returns the absolute path of the repository's qemu.sh, skipping the
// test when bash is missing.
func qemuSh(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "qemu.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// needQEMU skips the test when qemu-system-x86_64 is not installed.
func needQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
	}
}

// qemuResult is what one qemu.sh run produced.
type qemuResult struct {
	// stdout is the guest's serial output (or the -dry-run command line).
	stdout string
	// stderr is qemu.sh's and QEMU's messages.
	stderr string
	// code is the exit status.
	code int
}

// runQemuSh runs qemu.sh with args and extra environment, without a
// terminal on stdin, as the tests of other packages will.
func runQemuSh(t *testing.T, env []string, args ...string) qemuResult {
	t.Helper()
	cmd := exec.Command("bash", append([]string{qemuSh(t)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running qemu.sh: %v", err)
	}
	return qemuResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// bootImage builds testdata/boot into a PVH image in a temporary directory.
func bootImage(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "boot.img")
	if err := run([]string{"-entry", "main.entry", "-o", out, buildBoot(t)}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatalf("mkimage: %v", err)
	}
	return out
}

// fakeELF writes a file that passes qemu.sh's ELF magic check, for tests that
// never start QEMU.
func fakeELF(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake.img")
	if err := os.WriteFile(p, []byte("\x7fELF fake"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBootImageUnderQEMU(t *testing.T) {
	needQEMU(t)
	img := bootImage(t)
	start := time.Now()
	r := runQemuSh(t, nil, "-timeout", "60", img)
	t.Logf("boot took %v", time.Since(start))
	// The guest writes status 3 to isa-debug-exit; QEMU exits 7; qemu.sh
	// maps it back to 3.
	if r.code != 3 {
		t.Errorf("exit status %d, want 3 (the guest's); stderr:\n%s", r.code, r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "ok\n") {
		t.Errorf("serial output %q, want it to end with %q", r.stdout, "ok\n")
	}
}

func TestQemuShFailures(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An unconverted Go executable: QEMU refuses it for lack of a PVH note.
	noNote := buildBoot(t)
	img := bootImage(t)
	tests := []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "missing image is a usage error", args: []string{filepath.Join(dir, "nosuch.img")}, wantCode: 2, wantStderr: "does not exist"},
		{name: "no image is a usage error", args: []string{"-m", "64M"}, wantCode: 2, wantStderr: "missing IMAGE"},
		{name: "non-ELF image is a usage error", args: []string{script}, wantCode: 2, wantStderr: "not an ELF file"},
		{name: "directory as image is a usage error", args: []string{dir}, wantCode: 2, wantStderr: "not a readable file"},
		{name: "unknown option", args: []string{"-bogus", img}, wantCode: 2, wantStderr: "unknown option -bogus"},
		{name: "option without its value", args: []string{"-m"}, wantCode: 2, wantStderr: "option -m needs a value"},
		{name: "bad -net", args: []string{"-net", "bridge", img}, wantCode: 2, wantStderr: "-net wants none, user or tap"},
		{name: "bad -dev", args: []string{"-dev", "new", img}, wantCode: 2, wantStderr: "-dev wants transitional, legacy or modern"},
		{name: "bad -accel", args: []string{"-accel", "hvf", img}, wantCode: 2, wantStderr: "-accel wants auto, kvm or tcg"},
		{name: "bad -fwd", args: []string{"-fwd", "70000", img}, wantCode: 2, wantStderr: "-fwd wants a TCP port"},
		{name: "bad -timeout", args: []string{"-timeout", "1.5", img}, wantCode: 2, wantStderr: "-timeout wants a positive number"},
		{name: "bad -props", args: []string{"-props", "mrg_rxbuf", img}, wantCode: 2, wantStderr: "-props wants K=V"},
		{name: "argument after image without --", args: []string{img, "-m", "64M"}, wantCode: 2, wantStderr: "unexpected argument '-m' after IMAGE"},
		{name: "QEMU binary missing names the package", env: []string{"QEMU=" + filepath.Join(dir, "qemu-nosuch")}, args: []string{img}, wantCode: 127, wantStderr: "Debian's package qemu-system-x86"},
		{name: "QEMU refusing the image is not a guest status", args: []string{noNote}, wantCode: 125, wantStderr: "QEMU failed"},
		{name: "QEMU rejecting an extra argument is not a guest status", args: []string{img, "--", "-no-such-qemu-option"}, wantCode: 125, wantStderr: "QEMU failed"},
		{name: "timeout kills a stopped guest", args: []string{"-timeout", "1", img, "--", "-S"}, wantCode: 124, wantStderr: "timed out after 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runQemuSh(t, tt.env, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestQemuShCommandLine(t *testing.T) {
	img := fakeELF(t)
	// qemu.sh picks KVM only for a hardware KVM module and a usable
	// /dev/kvm; kvm-pvm alone must give TCG.
	kvm := false
	for _, m := range []string{"/sys/module/kvm_intel", "/sys/module/kvm_amd"} {
		if _, err := os.Stat(m); err == nil {
			kvm = true
		}
	}
	const readWrite = 4 | 2 // R_OK | W_OK for access(2)
	if kvm && syscall.Access("/dev/kvm", readWrite) != nil {
		kvm = false
	}
	wantAccel := "-accel tcg -cpu max"
	if kvm {
		wantAccel = "-accel kvm -cpu host,-arch-capabilities"
	}
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{
			name: "defaults",
			args: nil,
			want: []string{
				"qemu-system-x86_64 -M q35 ", " -m 256M ", " -smp 1 ", " -kernel " + img + " ",
				" -display none -vga none -serial mon:stdio -no-reboot ",
				" -device isa-debug-exit,iobase=0xf4,iosize=0x04 ", " -nic none",
			},
			notWant: []string{"-append", "-netdev", "virtio-net-pci"},
		},
		{name: "accelerator follows the kvm_intel/kvm_amd modules, not /dev/kvm", args: nil, want: []string{" " + wantAccel + " "}},
		{name: "tcg forced", args: []string{"-accel", "tcg"}, want: []string{" -accel tcg -cpu max "}},
		{name: "kvm forced", args: []string{"-accel", "kvm"}, want: []string{" -accel kvm -cpu host,-arch-capabilities "}},
		{name: "cpu model override", args: []string{"-accel", "tcg", "-cpu", "qemu64,+rdrand"}, want: []string{" -cpu qemu64,+rdrand "}},
		{name: "memory, cpus and machine", args: []string{"-m", "64M", "-smp", "2", "-M", "pc"}, want: []string{" -M pc ", " -m 64M ", " -smp 2 "}},
		{
			name:    "microvm keeps QEMU's ACPI tables, where the guest finds its virtio-mmio devices, and gets a virtio-net-device",
			args:    []string{"-M", "microvm", "-net", "user"},
			want:    []string{" -M microvm ", " -device virtio-net-device,netdev=n0\n"},
			notWant: []string{"acpi=", "virtio-net-pci", "romfile", "disable-legacy", "force-legacy"},
		},
		{name: "microvm keeps an acpi= setting", args: []string{"-M", "microvm,acpi=off,pit=off"}, want: []string{" -M microvm,acpi=off,pit=off "}},
		{
			name: "microvm flavours choose the virtio-mmio register layout",
			args: []string{"-M", "microvm", "-net", "user", "-dev", "modern", "-props", "mrg_rxbuf=off"},
			want: []string{" -global virtio-mmio.force-legacy=false ", " -device virtio-net-device,netdev=n0,mrg_rxbuf=off\n"},
		},
		{name: "microvm legacy layout", args: []string{"-M", "microvm", "-net", "user", "-dev", "legacy"}, want: []string{" -global virtio-mmio.force-legacy=true "}},
		{name: "command line with spaces is quoted", args: []string{"-append", "ip=10.0.2.15/24 gw=10.0.2.2"}, want: []string{" -append 'ip=10.0.2.15/24 gw=10.0.2.2'"}},
		{
			name: "user networking forwards 8080 to a transitional device",
			args: []string{"-net", "user"},
			want: []string{
				" -netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80 ",
				" -device virtio-net-pci,netdev=n0,disable-legacy=off,disable-modern=off,romfile=",
			},
			notWant: []string{"-nic none"},
		},
		{name: "forwarded port", args: []string{"-net", "user", "-fwd", "9090"}, want: []string{"hostfwd=tcp:127.0.0.1:9090-:80"}},
		{name: "legacy device", args: []string{"-net", "user", "-dev", "legacy"}, want: []string{"virtio-net-pci,netdev=n0,disable-legacy=off,disable-modern=on,"}},
		{name: "modern device", args: []string{"-net", "user", "-dev", "modern"}, want: []string{"virtio-net-pci,netdev=n0,disable-legacy=on,disable-modern=off,"}},
		{name: "device properties appended", args: []string{"-net", "user", "-props", "mrg_rxbuf=off,rx_queue_size=1024"}, want: []string{",romfile=,mrg_rxbuf=off,rx_queue_size=1024"}},
		{name: "tap networking", args: []string{"-net", "tap", "-tap", "tap3"}, want: []string{" -netdev tap,id=n0,ifname=tap3,script=no,downscript=no ", " -device virtio-net-pci,netdev=n0,"}},
		{name: "extra QEMU arguments come last", args: []string{img, "--", "-d", "int,cpu_reset", "-D", "/tmp/q log"}, want: []string{" -nic none -d int,cpu_reset -D '/tmp/q log'\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-dry-run"}, tt.args...)
			if len(tt.args) == 0 || tt.args[0] != img {
				args = append(args, img)
			}
			r := runQemuSh(t, nil, args...)
			if r.code != 0 {
				t.Fatalf("exit status %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("command line %q lacks %q", r.stdout, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(r.stdout, w) {
					t.Errorf("command line %q has %q", r.stdout, w)
				}
			}
		})
	}
}
