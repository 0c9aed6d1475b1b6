package network

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiommio"
	"github.com/govirtio/govirtio/driver/virtionet"
	"github.com/govirtio/govirtio/driver/virtiopci"
)

// Config says how to bring the network up. The zero value asks for DHCPv4
// and the driver's defaults.
type Config struct {
	// Address is the interface address with its prefix length; the zero
	// value means DHCPv4.
	Address netip.Prefix
	// Gateway is the default router (static configuration only).
	Gateway netip.Addr
	// DNS lists name servers (static configuration; DHCP supplies its own).
	DNS []netip.Addr
	// DHCPTimeout bounds the wait for a lease; zero means 15 seconds.
	DHCPTimeout time.Duration
	// Driver and Transport are passed to the virtio-net driver and the
	// virtio PCI transport (feature mask, queue size, legacy, INTx...).
	Driver    virtionet.Options
	Transport virtiopci.Options
	// MMIO lists the virtio-mmio devices the VMM described (on the
	// command line: virtio_mmio.device=SIZE@BASE:IRQ), searched when PCI
	// has no virtio-net device; when it is empty, Start searches those the
	// ACPI tables declare instead. MMIOTransport is passed to their
	// transport.
	MMIO          []virtiommio.Device
	MMIOTransport virtiommio.Options
	// TCPRACK turns on RACK-TLP loss detection (RFC 8985), which is off
	// by default: see tuneTCP.
	TCPRACK bool
	// ACKDelay, when positive, holds pure TCP ACKs back that long for data
	// to carry them (package delayedack: half the packets on a
	// request/response connection). Zero sends every ACK at once: under
	// QEMU's TCG holding costs the guest about as much CPU as sending
	// (3% more per request on wrk -c1, measured), so it is off by default.
	ACKDelay time.Duration
	// Logf receives progress messages; nil means silence.
	Logf func(format string, args ...any)
}

// ConfigFromArgs reads a Config from command-line words (os.Args[1:],
// which the kernel fills from its command line):
//
//	ip=ADDR/LEN        static address (else DHCPv4)
//	gw=ADDR            default router
//	dns=ADDR[,ADDR]    name servers
//	virtio_net.features=MASK  feature bits the driver may accept (hex or decimal)
//	virtio_net.legacy=1       use the legacy interface of a transitional device
//	virtio_net.intx=1         use INTx even when MSI-X is available
//	virtio_net.queue=N        RX/TX ring size on a modern device
//	virtio_net.packed=0       split rings even when the device offers packed
//	                          ones (clears VIRTIO_F_RING_PACKED from the mask)
//	tcp.rack=1                RACK-TLP loss detection on (see Config.TCPRACK)
//	tcp.ackdelay=DURATION     delayed ACKs (Config.ACKDelay), e.g. 1ms
//	virtio_mmio.device=SIZE@BASE:IRQ  a virtio-mmio device (Config.MMIO);
//	                          QEMU's microvm with acpi=off and Firecracker
//	                          add one per device (without any, Start reads
//	                          the ACPI tables)
//
// Other words are ignored.
func ConfigFromArgs(args []string) (Config, error) {
	var c Config
	packed := true
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "ip":
			c.Address, err = netip.ParsePrefix(v)
		case "gw":
			c.Gateway, err = netip.ParseAddr(v)
		case "dns":
			for _, s := range strings.Split(v, ",") {
				var d netip.Addr
				if d, err = netip.ParseAddr(s); err != nil {
					break
				}
				c.DNS = append(c.DNS, d)
			}
		case "virtio_net.features":
			c.Driver.FeatureMask, err = strconv.ParseUint(v, 0, 64)
		case "virtio_net.legacy":
			c.Transport.ForceLegacy, err = strconv.ParseBool(v)
		case "virtio_net.intx":
			c.Transport.NoMSIX, err = strconv.ParseBool(v)
		case "virtio_net.queue":
			c.Driver.QueueSize, err = strconv.Atoi(v)
		case "virtio_net.packed":
			packed, err = strconv.ParseBool(v)
		case "tcp.rack":
			c.TCPRACK, err = strconv.ParseBool(v)
		case "tcp.ackdelay":
			c.ACKDelay, err = time.ParseDuration(v)
		case "virtio_mmio.device":
			var d virtiommio.Device
			if d, err = virtiommio.ParseDevice(v); err == nil {
				c.MMIO = append(c.MMIO, d)
			}
		default:
			continue
		}
		if err != nil {
			return Config{}, fmt.Errorf("network: command line %q: %w", a, err)
		}
	}
	if !packed {
		// Applied after the loop, so that a virtio_net.features word in
		// any position is narrowed rather than replaced.
		if c.Driver.FeatureMask == 0 {
			c.Driver.FeatureMask = ^uint64(0)
		}
		c.Driver.FeatureMask &^= virtio.FeatureRingPacked
	}
	return c, nil
}

// StartFromArgs is ConfigFromArgs then Start, with progress messages to
// logf (nil for none): what a program booted with `ip=... gw=...` or with
// nothing (DHCP) on its command line calls first.
func StartFromArgs(ctx context.Context, args []string, logf func(format string, args ...any)) (*Network, error) {
	cfg, err := ConfigFromArgs(args)
	if err != nil {
		return nil, err
	}
	cfg.Logf = logf
	return Start(ctx, cfg)
}
