//go:build hostnet

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// hostnet is the platform of an ordinary Linux program: the kernel's own
// TCP/IP stack through package net.
type hostnet struct{}

// startPlatform has nothing to bring up: the system configured the
// network before it started the program.
func startPlatform() (platform, error) { return hostnet{}, nil }

func (hostnet) Listen(port uint16) (net.Listener, error) {
	return net.Listen("tcp", ":"+strconv.Itoa(int(port)))
}

// Address lists the machine's addresses other than loopback.
func (hostnet) Address() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "?"
	}
	var list []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
			list = append(list, ipn.IP.String())
		}
	}
	if len(list) == 0 {
		return "no address"
	}
	return strings.Join(list, " ")
}

// Counters gives the kernel's TCP retransmission counters, the closest to
// what the govirtio build reports (its driver counters have no equivalent
// here: `ip -s link` in the guest shows the interface's).
func (hostnet) Counters() string {
	return fmt.Sprintf("tcp retransmits %s timeouts %s fast %s",
		procCounter("/proc/net/snmp", "Tcp", "RetransSegs"),
		procCounter("/proc/net/netstat", "TcpExt", "TCPTimeouts"),
		procCounter("/proc/net/netstat", "TcpExt", "TCPFastRetrans"))
}

// procCounter reads counter name of section from a /proc/net/snmp-style
// file, where each section is a line of names then a line of values, both
// prefixed "Section:". It returns "?" when the counter is not there.
func procCounter(path, section, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != section+":" {
			continue
		}
		if names == nil {
			names = fields[1:]
			continue
		}
		for i, v := range fields[1:] {
			if i < len(names) && names[i] == name {
				return v
			}
		}
		return "?"
	}
	return "?"
}
