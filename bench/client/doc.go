// Command client measures the TCP throughput of a guest that runs two
// services: a zero source (port 19 by default) that sends zeros to whoever
// connects, and a discard sink (port 9 by default) that reads and drops
// everything it receives.
//
// bench/linux-compare.sh runs this same client against a Linux guest and a
// govirtio guest on the same QEMU backend, so that the ratio between the two
// depends on the guests only.
//
// Usage:
//
//	client -addr 10.0.3.15 [-seconds 10] [-dir both|tx|rx]
//	client -addr 10.0.3.15 -probe
//
// "tx" and "rx" are named from the guest's side: guest-tx is what the
// client receives from the zero source, guest-rx what it sends to the sink.
// Each measured direction prints one line:
//
//	guest-tx 12.345 MB/s 123450000 bytes 10.000 s
//
// where MB is 10^6 bytes. With -probe the client only checks that the zero
// source answers (it connects and waits for one byte) and exits 0 if it
// does, 1 if not; scripts poll it while the guest boots.
package main
