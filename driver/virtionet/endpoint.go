package virtionet

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gsoMaxSize is the largest TSO packet the endpoint lets netstack build:
// the IP total length field (65535) minus room for IPv6 and TCP headers
// with options.
const gsoMaxSize = 65535 - 40 - 60

var (
	_ stack.LinkEndpoint = (*Device)(nil)
	_ stack.GSOEndpoint  = (*Device)(nil)
)

// MTU implements stack.LinkEndpoint.
func (d *Device) MTU() uint32 { return d.mtu.Load() }

// SetMTU implements stack.LinkEndpoint. The device is not told: a device
// with FeatureMTU fixes the maximum, and RX buffers were sized at Open, so
// a larger MTU is clamped to what they allow.
func (d *Device) SetMTU(mtu uint32) { d.mtu.Store(min(mtu, d.maxMTU)) }

// MaxHeaderLength implements stack.LinkEndpoint: the Ethernet header. The
// virtio header lives in the driver's own slots, not in the packet.
func (d *Device) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (d *Device) LinkAddress() tcpip.LinkAddress {
	d.macMu.Lock()
	defer d.macMu.Unlock()
	return d.mac
}

// SetLinkAddress implements stack.LinkEndpoint. Only the source address of
// outgoing frames changes; the device's filter is not reprogrammed
// (CTRL_MAC_ADDR is not implemented), so use Options.Promiscuous when the
// address differs from the device's.
func (d *Device) SetLinkAddress(addr tcpip.LinkAddress) {
	d.macMu.Lock()
	defer d.macMu.Unlock()
	d.mac = addr
}

// Capabilities implements stack.LinkEndpoint.
//
// Checksum offload is per packet, not endpoint-wide. TX checksums are
// offloaded through GSO (see SupportedGSO), so CapabilityTXChecksumOffload
// (which would stop netstack from computing any checksum, including the
// pseudo-header sum NEEDS_CSUM relies on) is never claimed. On RX, the
// header flags say per packet whether the checksum needs verifying; but
// netstack's NIC overwrites PacketBuffer.RXChecksumValidated with this
// method's CapabilityRXChecksumOffload bit for every packet it is handed,
// so the bit reflects the packet being delivered: deliver sets rxCsumOK
// around DeliverNetworkPacket. Only the RX loop delivers and only the NIC's
// delivery path reads the RX bit, so this is exact.
func (d *Device) Capabilities() stack.LinkEndpointCapabilities {
	caps := stack.CapabilityResolutionRequired
	if d.rxCsumOK.Load() {
		caps |= stack.CapabilityRXChecksumOffload
	}
	return caps
}

// SupportedGSO implements stack.GSOEndpoint: the device segments TCP
// (both IPv4 and IPv6, since netstack does not ask per protocol) and
// completes checksums.
func (d *Device) SupportedGSO() stack.SupportedGSO {
	const need = FeatureCsum | FeatureHostTSO4 | FeatureHostTSO6
	if d.features&need == need {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// GSOMaxSize implements stack.GSOEndpoint. On a small TX queue it is
// capped so that a segment's pages (plus its header and one view that
// straddles a page) fit one chain; what does not fit still goes out,
// copied into a bounce buffer (txRing.postBounced).
func (d *Device) GSOMaxSize() uint32 {
	if d.SupportedGSO() == stack.GSONotSupported {
		return 0
	}
	return min(gsoMaxSize, uint32(max(d.tx.q.Size()-2, 1))*pageSize)
}

// Attach implements stack.LinkEndpoint. Received packets are dropped (and
// counted) while no dispatcher is attached.
func (d *Device) Attach(dispatcher stack.NetworkDispatcher) {
	if dispatcher == nil {
		d.dispatcher.Store(nil)
		return
	}
	d.dispatcher.Store(&dispatcherBox{d: dispatcher})
}

// IsAttached implements stack.LinkEndpoint.
func (d *Device) IsAttached() bool { return d.dispatcher.Load() != nil }

// Wait implements stack.LinkEndpoint: it returns once the driver's
// goroutines have stopped. They stop on Close (or when netstack removes
// the NIC, which closes the endpoint); stack.Close alone does not stop
// link endpoints, so close the Device before stack.Wait.
func (d *Device) Wait() { d.wg.Wait() }

// ARPHardwareType implements stack.LinkEndpoint.
func (d *Device) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint: it pushes the Ethernet header.
func (d *Device) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	fields := header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	}
	if fields.SrcAddr == "" {
		fields.SrcAddr = d.LinkAddress()
	}
	eth.Encode(&fields)
}

// ParseHeader implements stack.LinkEndpoint.
func (d *Device) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	return ok
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (d *Device) SetOnCloseAction(action func()) {
	if action == nil {
		d.onClose.Store(nil)
		return
	}
	d.onClose.Store(&action)
}

// WritePackets implements stack.LinkWriter. Each packet must carry its
// Ethernet header. Packets are posted without copying; the driver holds a
// reference to each until the device returns it. When the ring fills, it
// returns the number posted so far, or ErrWouldBlock if none was.
func (d *Device) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	return d.tx.Write(pkts.AsSlice())
}

// WritePacket sends one packet as WritePackets does. It is what a
// queueing discipline that adds nothing calls (see network's): gVisor's
// default one wraps every packet in a list it allocates.
func (d *Device) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	one := [1]*stack.PacketBuffer{pkt}
	_, err := d.tx.Write(one[:])
	return err
}

// deliver hands a received frame to netstack; the caller keeps (and
// releases) its reference.
func (d *Device) deliver(pkt *stack.PacketBuffer) bool {
	box := d.dispatcher.Load()
	if box == nil {
		return false
	}
	hdr, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if !ok {
		return false
	}
	if pkt.RXChecksumValidated {
		d.rxCsumOK.Store(true)
		defer d.rxCsumOK.Store(false)
	}
	box.d.DeliverNetworkPacket(header.Ethernet(hdr).Type(), pkt)
	return true
}
