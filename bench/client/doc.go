// Command client measures a guest that runs the services of
// examples/throughput: a zero source (TCP port 19), a discard sink (TCP port
// 9), an echo service (TCP port 7) and an HTTP server (port 80) with
// GET /bytes?n=N, POST /sha256 and GET /cpu.
//
// bench/linux-compare.sh runs this same client against a Linux guest and a
// govirtio guest on the same QEMU backend, so that the ratio between the two
// depends on the guests only.
//
// Usage:
//
//	client -addr 10.0.3.15 [-mode tcp] [-seconds 10] [-dir both|tx|rx]
//	client -addr 10.0.3.15 -mode rr [-seconds 10]
//	client -addr 10.0.3.15 -mode http [-bytes 67108864] [-dir both|tx|rx]
//	client -addr 10.0.3.15 -mode cpu
//	client -addr 10.0.3.15 -probe
//
// "tx" and "rx" are named from the guest's side. Every figure is one line,
// its name, its value and its unit first, so that `awk '$1 == name'`
// picks it out; MB is 10^6 bytes.
//
// -mode tcp (the default) measures raw TCP throughput for -seconds per
// direction: guest-tx is what the client receives from the zero source,
// guest-rx what it sends to the sink.
//
//	guest-tx 12.345 MB/s 123450000 bytes 10.000 s
//	guest-rx 23.456 MB/s 234560000 bytes 10.000 s
//
// -mode rr measures request/response on one connection to the echo service:
// write one byte, read it back, repeat for -seconds. It prints the rate and
// the median and 99th percentile of the round trips:
//
//	rr 1234.567 trans/s 12346 transactions 10.000 s
//	rr-p50 0.789 ms
//	rr-p99 1.234 ms
//
// -mode http moves -bytes over HTTP on a fresh connection per direction:
// guest-tx downloads GET /bytes?n=N and checks the length and the pattern
// (byte i is i mod 251); guest-rx uploads that pattern with POST /sha256 and
// checks the hash the guest returns. The clock runs from the request to the
// end of the response, connection set-up included.
//
//	http-guest-tx 12.345 MB/s 67108864 bytes 5.436 s
//	http-guest-rx 23.456 MB/s 67108864 bytes 2.861 s
//
// -mode cpu reads the guest's CPU time since boot from GET /cpu: the time
// its CPU was busy (everything but idle, kernel and interrupts included)
// and the time in all, in ns of the guest's clock, and when the reading
// arrived by the client's clock (Unix ns). Two readings around a
// measurement give what the work cost the guest; the client's clock
// checks the guest's:
//
//	cpu-busy-ns 1234567890
//	cpu-total-ns 9876543210
//	cpu-at-ns 1767225600123456789
//
// With -probe the client only checks that the zero source answers (it
// connects and waits for one byte) and exits 0 if it does, 1 if not;
// scripts poll it while the guest boots.
package main
