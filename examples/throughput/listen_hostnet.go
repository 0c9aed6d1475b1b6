//go:build hostnet

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
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

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on x86 whatever
// the kernel's own tick rate.
const userHZ = 100

// CPUTime reads the first line of /proc/stat, the times of all the
// machine's CPUs: busy is user, nice, system, irq, softirq and steal,
// total adds idle and iowait. So busy counts the kernel's softirq network
// processing too, which the process's CPU-time clock would miss, as the
// govirtio build's counts its driver and stack.
func (hostnet) CPUTime() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseProcStatCPU(line)
}

// parseProcStatCPU reads /proc/stat's "cpu" line: user nice system idle
// iowait irq softirq steal [guest guest_nice], in USER_HZ ticks (guest
// time is in user already).
func parseProcStatCPU(line string) (busy, total time.Duration, err error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: not a cpu line with 8 times: %q", line)
	}
	var t [8]uint64
	for i := range t {
		if t[i], err = strconv.ParseUint(fields[1+i], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: cpu line: %w", err)
		}
	}
	user, nice, system, idle, iowait, irq, softirq, steal := t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]
	b := user + nice + system + irq + softirq + steal
	tick := time.Second / userHZ
	return time.Duration(b) * tick, time.Duration(b+idle+iowait) * tick, nil
}
