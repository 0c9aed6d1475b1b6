// Command leasefiles is booted by network's boot tests on QEMU's user
// networking: once network.Start has a DHCP lease, the kernel's
// /etc/resolv.conf names the lease's name server (QEMU's 10.0.2.3) and
// /etc/hosts maps the guest's name to its address, which Go's resolver
// then finds without a socket.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/govirtio/govirtio/network"
)

func main() {
	log.SetFlags(0)
	n, err := network.StartFromArgs(context.Background(), os.Args[1:], log.Printf)
	if err != nil {
		fmt.Printf("leasefiles: %v\n", err)
		os.Exit(1)
	}
	ok := true
	rc, err := os.ReadFile("/etc/resolv.conf")
	if err != nil || !strings.Contains(string(rc), "nameserver 10.0.2.3\n") {
		fmt.Printf("leasefiles: /etc/resolv.conf = %q, %v\n", rc, err)
		ok = false
	}
	me := n.Address.Addr().String()
	addrs, err := net.LookupHost("govirtio")
	if err != nil || !slices.Equal(addrs, []string{me}) {
		fmt.Printf("leasefiles: LookupHost(govirtio) = %v, %v; want [%s]\n", addrs, err, me)
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
	fmt.Println("leasefiles: ok")
}
