// Command bootcheck is booted by the kernel's boot tests: its first
// argument (from the kernel command line) picks one behaviour to check.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	_ "github.com/govirtio/govirtio/runtime/kernel"
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
	p := (*uint64)(unsafe.Pointer(uintptr(0xffff_8000_dead_0000)))
	*p = 42
}
