package network

import (
	"errors"
	"net/netip"
	"syscall"

	"github.com/govirtio/govirtio/runtime/kernel"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// publishResolver hands the configuration to the kernel's /etc files, so
// that Go's resolver in the program finds the name servers
// (/etc/resolv.conf; left as the command line's dns= made it when there
// are none) and the guest's own name resolves to addr (/etc/hosts). Off
// the bare machine (host-side tests) the kernel call is unknown (ENOSYS),
// which is not worth a message.
func (n *Network) publishResolver(addr netip.Prefix, dns []netip.Addr) {
	report := func(err error) {
		if err != nil && !errors.Is(err, syscall.ENOSYS) {
			n.logf("network: %v", err)
		}
	}
	if len(dns) > 0 {
		report(kernel.SetNameServers(dns, nil))
	}
	if addr.IsValid() {
		report(kernel.SetHostAddresses([]netip.Addr{addr.Addr()}))
	}
}

// leaseDNS is the IPv4 name servers an ACK names (option 6).
func leaseDNS(ack *dhcpv4.DHCPv4) []netip.Addr {
	var dns []netip.Addr
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			dns = append(dns, a)
		}
	}
	return dns
}
