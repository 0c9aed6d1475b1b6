package kernel

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"

	"github.com/govirtio/govirtio/runtime/fsimage"
)

// SysSetKernelFile(slot, buf, len) replaces the contents of one of the
// kernel's own files (fsimage.SlotResolvConf, fsimage.SlotHosts) with
// len bytes at buf, at most 4096; see SetNameServers and
// SetHostAddresses. (Numbered apart from api.go's calls, leaving room for
// theirs.)
const SysSetKernelFile = 0x67a0

// SetNameServers replaces /etc/resolv.conf with one naming servers and,
// if any, the search domains: what package network calls once DHCP or
// the command line has given them. Go's resolver notices the change at
// its next lookup at most five seconds later (it checks the file's
// modification time).
func SetNameServers(servers []netip.Addr, search []string) error {
	var b strings.Builder
	b.WriteString("# /etc/resolv.conf: from dns= on the kernel command line or the DHCP lease\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s.Unmap())
	}
	if len(search) > 0 {
		for _, d := range search {
			if strings.ContainsAny(d, " \t\n") {
				return fmt.Errorf("kernel: search domain %q has white space", d)
			}
		}
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	return setKernelFile(fsimage.SlotResolvConf, b.String())
}

// SetHostAddresses replaces /etc/hosts with localhost's entries and the
// guest's own name (uname's nodename, "govirtio") for each of addrs.
func SetHostAddresses(addrs []netip.Addr) error {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "%s\t%s\n", a.Unmap(), guestName)
	}
	return setKernelFile(fsimage.SlotHosts, b.String())
}

// setKernelFile hands new contents for a kernel file to the kernel, which
// copies them.
func setKernelFile(slot int, s string) error {
	if len(s) > kernelFileMax {
		return fmt.Errorf("kernel: %d bytes for kernel file %d; at most %d fit", len(s), slot, kernelFileMax)
	}
	b := []byte(s)
	if _, _, e := syscall.RawSyscall(SysSetKernelFile, uintptr(slot), uintptr(unsafePointer(&b[0])), uintptr(len(b))); e != 0 {
		return fmt.Errorf("kernel: setting kernel file %d: %w", slot, e)
	}
	return nil
}

// sysSetKernelFile is SysSetKernelFile's kernel side.
func sysSetKernelFile(slot, buf, n uint64) int64 {
	if slot >= fsimage.Slots || n > kernelFileMax {
		return -eINVAL
	}
	if !userRange(buf, n, false) {
		return -eFAULT
	}
	fsInit() // so that the command line's contents do not overwrite these later
	k := &kernelFiles[slot]
	k.n = copy(k.data[:], userBytes(buf, int(n)))
	k.mtime = wallBase + nanotime()
	return 0
}
