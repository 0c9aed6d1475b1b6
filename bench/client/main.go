package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// probeTimeout bounds one -probe attempt; the caller retries.
const probeTimeout = 3 * time.Second

// httpTimeout bounds one HTTP transfer, request to end of response.
const httpTimeout = 10 * time.Minute

// cpuTimeout bounds one -mode cpu reading.
const cpuTimeout = 30 * time.Second

func main() {
	addr := flag.String("addr", "", "guest IP address (required)")
	mode := flag.String("mode", "tcp", "what to measure: tcp (raw throughput), rr (request/response), http (transfers) or cpu (the guest's CPU time so far)")
	seconds := flag.Float64("seconds", 10, "measurement time per direction (tcp) or in all (rr), in seconds")
	dir := flag.String("dir", "both", "directions to measure (tcp, http), from the guest's side: both, tx or rx")
	size := flag.Int64("bytes", 64<<20, "bytes per HTTP transfer")
	txPort := flag.Int("tx-port", 19, "guest port of the zero source (guest transmits)")
	rxPort := flag.Int("rx-port", 9, "guest port of the discard sink (guest receives)")
	echoPort := flag.Int("echo-port", 7, "guest port of the echo service")
	httpPort := flag.Int("http-port", 80, "guest port of the HTTP server")
	drain := flag.Duration("drain", 60*time.Second, "how long to wait for the sink to close after the last write")
	probeOnly := flag.Bool("probe", false, "only check that the zero source sends; exit 0 if it does, 1 if not")
	flag.Parse()

	if *addr == "" || flag.NArg() > 0 || *seconds <= 0 || *size < 0 {
		flag.Usage()
		os.Exit(2)
	}
	d := time.Duration(*seconds * float64(time.Second))
	hostPort := func(port int) string { return net.JoinHostPort(*addr, strconv.Itoa(port)) }

	if *probeOnly {
		if err := probe(hostPort(*txPort), probeTimeout); err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		return
	}

	tx, rx, err := parseDir(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(2)
	}
	failed := false
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "client:", err)
		failed = true
	}
	report := func(name string, r Result, err error) {
		if err != nil {
			fail(err)
			return
		}
		fmt.Printf("%s %.3f MB/s %d bytes %.3f s\n", name, r.MBps(), r.Bytes, r.Elapsed.Seconds())
	}
	switch *mode {
	case "tcp":
		if tx {
			r, err := receive(hostPort(*txPort), d)
			report("guest-tx", r, err)
		}
		if rx {
			r, err := send(hostPort(*rxPort), d, *drain)
			report("guest-rx", r, err)
		}
	case "rr":
		r, err := requestResponse(hostPort(*echoPort), d)
		if err != nil {
			fail(err)
			break
		}
		fmt.Printf("rr %.3f trans/s %d transactions %.3f s\n", r.Rate(), r.Transactions(), r.Elapsed.Seconds())
		fmt.Printf("rr-p50 %.3f ms\n", ms(r.Percentile(50)))
		fmt.Printf("rr-p99 %.3f ms\n", ms(r.Percentile(99)))
	case "http":
		base := "http://" + hostPort(*httpPort)
		if tx {
			r, err := download(base, *size, httpTimeout)
			report("http-guest-tx", r, err)
		}
		if rx {
			r, err := upload(base, *size, httpTimeout)
			report("http-guest-rx", r, err)
		}
	case "cpu":
		c, err := readCPU("http://"+hostPort(*httpPort), cpuTimeout)
		if err != nil {
			fail(err)
			break
		}
		fmt.Printf("cpu-busy-ns %d\ncpu-total-ns %d\ncpu-at-ns %d\n", c.Busy, c.Total, c.At)
	default:
		fmt.Fprintf(os.Stderr, "client: -mode wants tcp, rr, http or cpu, got %q\n", *mode)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// parseDir reads -dir: which of the guest's directions to measure.
func parseDir(dir string) (tx, rx bool, err error) {
	switch dir {
	case "both":
		return true, true, nil
	case "tx":
		return true, false, nil
	case "rx":
		return false, true, nil
	}
	return false, false, fmt.Errorf("-dir wants both, tx or rx, got %q", dir)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
