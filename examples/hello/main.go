// Command hello is the smallest govirtio program worth booting: it
// exercises what the bare-metal runtime must get right for ordinary Go
// code (goroutines, channels, mutexes, timers, the garbage collector, the
// clock) and prints "hello: ok" as its last line.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	_ "github.com/govirtio/govirtio/runtime/kernel"
)

func main() {
	start := time.Now()
	fmt.Printf("hello: booted, %d CPU, args %q\n", runtime.NumCPU(), os.Args[1:])

	// Goroutines, a channel and a mutex.
	var mu sync.Mutex
	total := 0
	results := make(chan int)
	for i := 0; i < 8; i++ {
		go func(i int) {
			sum := 0
			for j := 0; j <= 1000; j++ {
				sum += j
			}
			mu.Lock()
			total += sum
			mu.Unlock()
			results <- i
		}(i)
	}
	for i := 0; i < 8; i++ {
		<-results
	}
	if total != 8*500500 {
		fail("goroutines summed %d", total)
	}

	// Sleeping and timers.
	t0 := time.Now()
	time.Sleep(20 * time.Millisecond)
	if d := time.Since(t0); d < 20*time.Millisecond {
		fail("slept only %v", d)
	}
	timer := time.NewTimer(10 * time.Millisecond)
	ticker := time.NewTicker(5 * time.Millisecond)
	ticks := 0
	for done := false; !done; {
		select {
		case <-ticker.C:
			ticks++
		case <-timer.C:
			done = true
		}
	}
	ticker.Stop()
	fmt.Printf("hello: timers fired (%d ticks)\n", ticks)

	// Allocate a few hundred MiB in total so that the GC runs repeatedly.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcBefore := ms.NumGC
	var keep [][]byte
	for i := 0; i < 300; i++ {
		b := make([]byte, 1<<20)
		b[0], b[len(b)-1] = byte(i), byte(i)
		keep = append(keep, b)
		if len(keep) > 8 {
			keep = keep[1:]
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if ms.NumGC-gcBefore < 2 {
		fail("GC ran %d times", ms.NumGC-gcBefore)
	}
	fmt.Printf("hello: GC ran %d times, heap %d MiB\n", ms.NumGC-gcBefore, ms.HeapAlloc>>20)

	if now := time.Now(); now.Year() < 2020 {
		fail("wall clock says %v", now)
	}
	fmt.Printf("hello: %v since boot, wall clock %s\n", time.Since(start).Round(time.Millisecond), time.Now().UTC().Format(time.RFC3339))
	fmt.Println("hello: ok")
}

func fail(format string, args ...any) {
	fmt.Printf("hello: FAIL: "+format+"\n", args...)
	os.Exit(1)
}
