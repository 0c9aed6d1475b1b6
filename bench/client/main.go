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

func main() {
	addr := flag.String("addr", "", "guest IP address (required)")
	seconds := flag.Float64("seconds", 10, "measurement time per direction, in seconds")
	dir := flag.String("dir", "both", "directions to measure, from the guest's side: both, tx or rx")
	txPort := flag.Int("tx-port", 19, "guest port of the zero source (guest transmits)")
	rxPort := flag.Int("rx-port", 9, "guest port of the discard sink (guest receives)")
	drain := flag.Duration("drain", 60*time.Second, "how long to wait for the sink to close after the last write")
	probeOnly := flag.Bool("probe", false, "only check that the zero source sends; exit 0 if it does, 1 if not")
	flag.Parse()

	if *addr == "" || flag.NArg() > 0 || *seconds <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	d := time.Duration(*seconds * float64(time.Second))
	txAddr := net.JoinHostPort(*addr, strconv.Itoa(*txPort))
	rxAddr := net.JoinHostPort(*addr, strconv.Itoa(*rxPort))

	if *probeOnly {
		if err := probe(txAddr, probeTimeout); err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		return
	}

	var tx, rx bool
	switch *dir {
	case "both":
		tx, rx = true, true
	case "tx":
		tx = true
	case "rx":
		rx = true
	default:
		fmt.Fprintf(os.Stderr, "client: -dir wants both, tx or rx, got %q\n", *dir)
		os.Exit(2)
	}
	failed := false
	report := func(name string, r Result, err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			failed = true
			return
		}
		fmt.Printf("%s %.3f MB/s %d bytes %.3f s\n", name, r.MBps(), r.Bytes, r.Elapsed.Seconds())
	}
	if tx {
		r, err := receive(txAddr, d)
		report("guest-tx", r, err)
	}
	if rx {
		r, err := send(rxAddr, d, *drain)
		report("guest-rx", r, err)
	}
	if failed {
		os.Exit(1)
	}
}
