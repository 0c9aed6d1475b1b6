// Command startfail is booted by network's boot tests on a network where
// DHCP gets no answer: network.Start must fail and leave nothing running
// (the driver's goroutines stopped, the device reset, the stack closed).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/govirtio/govirtio/network"
)

func main() {
	log.SetFlags(0)
	before := runtime.NumGoroutine()
	_, err := network.Start(context.Background(), network.Config{DHCPTimeout: 2 * time.Second, Logf: log.Printf})
	if err == nil {
		fmt.Println("startfail: Start succeeded without a DHCP server")
		os.Exit(1)
	}
	fmt.Printf("startfail: Start failed: %v\n", err)
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("startfail: %d goroutines before Start, %d after\n", before, runtime.NumGoroutine())
	if runtime.NumGoroutine() > before {
		os.Exit(1)
	}
	fmt.Println("startfail: ok")
}
