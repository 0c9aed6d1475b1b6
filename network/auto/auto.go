// Package auto brings the network up by itself: importing it, as the image
// builder does for an unmodified main package, starts the virtio-net
// driver and a gVisor stack before main runs, configured from the kernel
// command line (ip=, gw=, dns=) or by DHCP, and serves the program's
// socket system calls with it, so that Go's net package (net.Listen,
// net.Dial, http.ListenAndServe) works without importing package network.
//
//	import _ "github.com/govirtio/govirtio/network/auto"
//
// Socket calls made while DHCP runs wait for it. Without a virtio-net
// device the console says so and socket(2) fails with EAFNOSUPPORT. A
// program that calls network.Start itself gets the network this package
// brought up (see network.StartAuto).
package auto

import "github.com/govirtio/govirtio/network"

func init() { network.StartAuto() }
