// Command bootcheck is booted by the kernel's boot tests: its first
// argument (from the kernel command line) picks one behaviour to check.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/govirtio/govirtio/runtime/acpi"
	"github.com/govirtio/govirtio/runtime/irq"
	"github.com/govirtio/govirtio/runtime/kernel"
	"github.com/govirtio/govirtio/runtime/machine"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("bootcheck: no mode")
		os.Exit(1)
	}
	switch mode := os.Args[1]; mode {
	case "alloc":
		alloc()
	case "nilderef":
		nilDeref()
	case "spin":
		spin()
	case "badaddr":
		badAddress()
	case "irq":
		interrupts()
	case "machine":
		machineAccess()
	case "profile":
		profile()
	case "clock":
		clock()
	case "acpi":
		acpiTables()
	case "memlimit":
		// crypto/rand links Go's 32 MiB DRBG buffer into the bss, as in
		// most programs: it must not count against the limit.
		var b [8]byte
		rand.Read(b[:])
		fmt.Printf("bootcheck: memory limit %d MiB\n", debug.SetMemoryLimit(-1)>>20)
	case "sleep":
		// A second for the host to settle, then the measured sleep.
		fmt.Println("bootcheck: booted")
		time.Sleep(time.Second)
		fmt.Println("bootcheck: sleeping")
		start := time.Now()
		time.Sleep(2 * time.Second)
		fmt.Printf("bootcheck: slept %d ns\n", time.Since(start))
	case "panic":
		panic("bootcheck: deliberate panic")
	case "exit":
		fmt.Println("bootcheck: exiting with 7")
		os.Exit(7)
	default:
		fmt.Printf("bootcheck: unknown mode %q\n", mode)
		os.Exit(1)
	}
	fmt.Printf("bootcheck: %s ok\n", os.Args[1])
}

// alloc allocates 1 GiB in total, 8 MiB at a time, keeping little alive:
// it only completes in a small machine if freed memory is reused.
var sink []byte

func alloc() {
	var total int
	for total < 1<<30 {
		b := make([]byte, 8<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // touch every page
		}
		sink = b
		total += len(b)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("bootcheck: allocated %d MiB, %d GCs, %d MiB obtained from the system\n",
		total>>20, ms.NumGC, ms.Sys>>20)
}

type node struct{ next *node }

// nilDeref dereferences nil in a goroutine and recovers.
func nilDeref() {
	var wg sync.WaitGroup
	var got any
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { got = recover() }()
		var n *node
		fmt.Println(n.next) // faults
	}()
	wg.Wait()
	if got == nil {
		fmt.Println("bootcheck: nil dereference was not recovered")
		os.Exit(1)
	}
	fmt.Printf("bootcheck: recovered: %v\n", got)
}

// spin runs a loop with no function calls in a goroutine; runtime.GC must
// still complete, which needs asynchronous preemption.
func spin() {
	var stop uint32
	go func() {
		for stop == 0 {
		}
	}()
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		runtime.GC()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		fmt.Println("bootcheck: GC did not complete while a goroutine spun")
		os.Exit(1)
	}
	stop = 1
}

// badAddress writes to an address in the kernel's half of the address
// space that nothing maps.
func badAddress() {
	p := (*uint64)(unsafe.Pointer(uintptr(0xffff_e000_dead_0000)))
	*p = 42
}

// interrupts raises an MSI vector by self-IPI and checks that a goroutine
// parked in Wait sees every interrupt, and that Wait honours its context.
func interrupts() {
	line, err := irq.AllocMSI()
	if err != nil {
		fmt.Println("bootcheck:", err)
		os.Exit(1)
	}
	addr, data := line.MSIMessage()
	fmt.Printf("bootcheck: vector %d, MSI address %#x data %#x\n", line.Vector(), addr, data)
	got := make(chan int)
	go func() {
		n := 0
		for n < 3 {
			c, err := line.Wait(context.Background())
			if err != nil {
				fmt.Println("bootcheck:", err)
				os.Exit(1)
			}
			n += c
		}
		got <- n
	}()
	for i := 0; i < 3; i++ {
		time.Sleep(5 * time.Millisecond)
		if err := line.Raise(); err != nil {
			fmt.Println("bootcheck:", err)
			os.Exit(1)
		}
	}
	select {
	case n := <-got:
		fmt.Printf("bootcheck: waiter saw %d interrupts\n", n)
	case <-time.After(10 * time.Second):
		fmt.Println("bootcheck: waiter never woke")
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := line.Wait(ctx); err != context.DeadlineExceeded {
		fmt.Printf("bootcheck: Wait with a 20ms context returned %v\n", err)
		os.Exit(1)
	}
	if _, err := irq.AllocMSI(); err != nil {
		fmt.Println("bootcheck: second vector:", err)
		os.Exit(1)
	}
}

// globalPage is a Go global (in the image's bss) whose address Phys must
// translate too.
var globalPage [64]byte

// machineAccess checks DMA memory, address translation, register mapping
// and port I/O against the real machine.
// check stops the program with status 1 and a message unless ok.
func check(ok bool, format string, args ...any) {
	if !ok {
		fmt.Printf("bootcheck: "+format+"\n", args...)
		os.Exit(1)
	}
}

func machineAccess() {
	var dma machine.DMA
	for _, tc := range []struct{ size, align int }{{64, 16}, {4096, 4096}, {100, 64}, {65536, 4096}, {12000, 8192}} {
		b, phys, err := dma.Alloc(tc.size, tc.align)
		check(err == nil, "alloc %d/%d: %v", tc.size, tc.align, err)
		check(len(b) == tc.size && phys%uint64(tc.align) == 0, "alloc %d/%d: len %d phys %#x", tc.size, tc.align, len(b), phys)
		for _, c := range b {
			check(c == 0, "DMA memory not zeroed")
		}
		p, err := dma.Phys(b)
		check(err == nil && p == phys, "Phys of DMA memory: %#x, %v (want %#x)", p, err, phys)
	}
	page := make([]byte, 8192)
	off := int(-uintptr(unsafe.Pointer(&page[0]))) & 4095
	p, err := dma.Phys(page[off : off+4096])
	check(err == nil && p != 0 && p%4096 == 0 && p < 1<<40, "Phys of a heap page: %#x, %v", p, err)
	_, err = dma.Phys(page[off+4000 : off+4200])
	check(err != nil, "Phys of a buffer across pages succeeded")
	// Phys walks the page tables itself; the kernel's answer must agree.
	for _, b := range [][]byte{page[off : off+4096], page[off+100 : off+200], globalPage[:]} {
		p, err := dma.Phys(b)
		kp, _, e := syscall.RawSyscall(kernel.SysVirtToPhys, uintptr(unsafe.Pointer(&b[0])), 0, 0)
		check(err == nil && e == 0 && p == uint64(kp), "Phys %#x, %v; kernel says %#x, %v", p, err, kp, e)
	}

	// PCI host bridge at 00:00.0 through configuration mechanism #1.
	var ports machine.Ports
	ports.Out32(0xcf8, 0x80000000)
	id := ports.In32(0xcfc)
	check(id&0xffff == 0x8086, "host bridge vendor/device %#x, want Intel's vendor id", id)

	_, err = machine.MapRegisters(0x100000, 4096)
	check(err != nil, "mapping RAM as registers succeeded")
	regs, err := machine.MapRegisters(0xfec00000, 0x20)
	check(err == nil, "map the I/O APIC: %v", err)
	regs.Write32(0, 1) // select the version register
	check(regs.Read32(0x10)&0xff != 0 && (regs.Read32(0x10)>>16)&0xff >= 23, "I/O APIC version register %#x", regs.Read32(0x10))
	fmt.Printf("bootcheck: DMA, registers and ports work (host bridge %#x)\n", id)
}

// profile runs Go's CPU profiler (runtime/pprof: per-thread timer_create
// timers and setitimer, SIGPROF) over about a second of CPU-bound work in
// hotLoop and prints the profile, base64, between markers for the host to
// read with go tool pprof.
func profile() {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		fmt.Println("bootcheck:", err)
		os.Exit(1)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		hotSink += hotLoop(1 << 14)
	}
	pprof.StopCPUProfile()
	s, err := kernel.ReadStats()
	if err != nil {
		fmt.Println("bootcheck:", err)
		os.Exit(1)
	}
	fmt.Printf("bootcheck: profile of %d bytes, %d CPU-timer signals\n", buf.Len(), s.CPUTimerSignals)
	fmt.Println("bootcheck: profile begin")
	enc := base64.StdEncoding.EncodeToString(buf.Bytes())
	for len(enc) > 0 {
		n := min(len(enc), 76)
		fmt.Println(enc[:n])
		enc = enc[n:]
	}
	fmt.Println("bootcheck: profile end")
}

var hotSink uint64

// hotLoop is where profile spends its CPU time.
//
//go:noinline
func hotLoop(n int) uint64 {
	h := uint64(0)
	for i := 0; i < n; i++ {
		h = h*31 + uint64(i)
	}
	return h
}

// clock reads the clock through the vDSO: 100000 reads of time.Now (each
// a CLOCK_REALTIME and a CLOCK_MONOTONIC read) must make next to no system
// calls, never go backwards, and agree with a sleep measured by the
// kernel's own timers.
func clock() {
	before, err := kernel.ReadStats()
	check(err == nil, "kernel stats: %v", err)
	start := time.Now()
	prev := start
	for i := 0; i < 100000; i++ {
		now := time.Now()
		check(!now.Before(prev), "time.Now went backwards: %v after %v", now, prev)
		prev = now
	}
	after, err := kernel.ReadStats()
	check(err == nil, "kernel stats: %v", err)
	calls := after.Syscalls - before.Syscalls
	check(calls < 1000, "100000 clock reads made %d system calls", calls)
	t0 := time.Now()
	time.Sleep(200 * time.Millisecond)
	slept := time.Since(t0)
	check(slept >= 200*time.Millisecond && slept < 2*time.Second, "a 200 ms sleep took %v", slept)
	wall := time.Now().Unix()
	check(wall > 1.7e9, "wall clock %d is before 2023", wall)
	fmt.Printf("bootcheck: 100000 clock reads made %d system calls\n", calls)
	fmt.Println("bootcheck: clock ok")
}

// acpiTables reads the ACPI tables the kernel copied at boot, counts the
// virtio-mmio transports in the DSDT, and opens level-triggered lines on
// either I/O APIC: GSI 23 on the first, 47 on microvm's second, 48 on none.
func acpiTables() {
	var msg []string
	for _, sig := range []string{"APIC", "DSDT"} {
		t, err := kernel.ACPITable(sig, 0)
		if err != nil {
			msg = append(msg, fmt.Sprintf("%s %v", sig, err))
			continue
		}
		msg = append(msg, fmt.Sprintf("%s %d bytes", sig, len(t)))
		if sig == "DSDT" {
			s, err := acpi.Devices(t)
			if err != nil {
				fmt.Printf("bootcheck: DSDT: %v\n", err)
				os.Exit(1)
			}
			msg[len(msg)-1] += fmt.Sprintf(", %d LNRO0005", len(s.ByHID("LNRO0005")))
		}
	}
	fmt.Printf("bootcheck: ACPI %s\n", strings.Join(msg, ", "))
	msg = nil
	for _, gsi := range []int{23, 47, 48} {
		l, err := irq.Level(gsi)
		if err != nil {
			msg = append(msg, fmt.Sprintf("gsi %d %v", gsi, errors.Unwrap(err)))
			break
		}
		l.Close()
		msg = append(msg, fmt.Sprintf("gsi %d ok", gsi))
	}
	fmt.Printf("bootcheck: %s\n", strings.Join(msg, ", "))
	fmt.Println("bootcheck: acpi ok")
}
