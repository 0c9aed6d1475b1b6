package virtionet

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/govirtio/govirtio/driver/virtio"
)

// virtio-net feature bits (virtio 1.2 §5.1.3). The transport-independent
// bits (VERSION_1, EVENT_IDX, INDIRECT_DESC...) are in package virtio.
const (
	FeatureCsum             uint64 = 1 << 0  // device handles packets with partial checksum (TX NEEDS_CSUM)
	FeatureGuestCsum        uint64 = 1 << 1  // driver handles packets with partial checksum (RX)
	FeatureCtrlGuestOffload uint64 = 1 << 2  // control channel offload reconfiguration
	FeatureMTU              uint64 = 1 << 3  // config mtu is valid
	FeatureMAC              uint64 = 1 << 5  // config mac is valid
	FeatureGSO              uint64 = 1 << 6  // legacy: any GSO type
	FeatureGuestTSO4        uint64 = 1 << 7  // driver receives TSOv4
	FeatureGuestTSO6        uint64 = 1 << 8  // driver receives TSOv6
	FeatureGuestECN         uint64 = 1 << 9  // driver receives TSO with ECN
	FeatureGuestUFO         uint64 = 1 << 10 // driver receives UFO
	FeatureHostTSO4         uint64 = 1 << 11 // device accepts TSOv4
	FeatureHostTSO6         uint64 = 1 << 12 // device accepts TSOv6
	FeatureHostECN          uint64 = 1 << 13 // device accepts TSO with ECN
	FeatureHostUFO          uint64 = 1 << 14 // device accepts UFO
	FeatureMrgRxbuf         uint64 = 1 << 15 // driver can merge receive buffers
	FeatureStatus           uint64 = 1 << 16 // config status is valid
	FeatureCtrlVQ           uint64 = 1 << 17 // control virtqueue present
	FeatureCtrlRx           uint64 = 1 << 18 // RX mode control (promiscuous, all-multicast)
	FeatureCtrlVLAN         uint64 = 1 << 19 // VLAN filtering control
	FeatureCtrlRxExtra      uint64 = 1 << 20 // extra RX mode control
	FeatureGuestAnnounce    uint64 = 1 << 21 // driver sends gratuitous packets on request
	FeatureMQ               uint64 = 1 << 22 // multiqueue
	FeatureCtrlMACAddr      uint64 = 1 << 23 // MAC address set through the control queue
	FeatureHashReport       uint64 = 1 << 57 // per-packet hash report
	FeatureRSS              uint64 = 1 << 60 // receive-side scaling
	FeatureRSCExt           uint64 = 1 << 61 // extended coalescing info
	FeatureStandby          uint64 = 1 << 62 // failover standby
	FeatureSpeedDuplex      uint64 = 1 << 63 // config speed and duplex are valid
)

// Implemented is every feature this driver knows how to use. Open asks for
// the intersection of Implemented, the user's mask and what the device
// offers, then removes features whose prerequisites are missing.
//
// ACCESS_PLATFORM says that the device's memory accesses go through the
// platform's address translation. The driver gives the device
// CPU-physical addresses and programs no IOMMU, which is right wherever no
// IOMMU stands in front of the device (QEMU's pc, q35 and microvm as they
// come, Firecracker); a device behind one (QEMU's intel-iommu with
// iommu_platform=on) would see its DMA fault. A device that offers the
// feature may refuse a driver that declines it, so it is accepted.
const Implemented = FeatureCsum | FeatureGuestCsum | FeatureMTU | FeatureMAC |
	FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN |
	FeatureHostTSO4 | FeatureHostTSO6 | FeatureHostECN |
	FeatureMrgRxbuf | FeatureStatus | FeatureCtrlVQ | FeatureCtrlRx |
	FeatureGuestAnnounce |
	virtio.FeatureVersion1 | virtio.FeatureEventIdx | virtio.FeatureIndirectDesc |
	virtio.FeatureAnyLayout | virtio.FeatureAccessPlatform | virtio.FeatureRingPacked

// featureDeps are the prerequisites of the features this driver takes
// (virtio 1.2 §5.1.3.1). Where the specification allows either of two
// features (ECN needs TSO4 or TSO6), the dependency asks for TSO4: it is
// stricter, so the result is still a legal set, and every device that
// offers TSO6 also offers TSO4 in practice (QEMU does).
var featureDeps = []virtio.Dependency{
	{Feature: FeatureGuestTSO4, Requires: FeatureGuestCsum},
	{Feature: FeatureGuestTSO6, Requires: FeatureGuestCsum},
	{Feature: FeatureGuestECN, Requires: FeatureGuestTSO4},
	{Feature: FeatureHostTSO4, Requires: FeatureCsum},
	{Feature: FeatureHostTSO6, Requires: FeatureCsum},
	{Feature: FeatureHostECN, Requires: FeatureHostTSO4},
	{Feature: FeatureCtrlRx, Requires: FeatureCtrlVQ},
	{Feature: FeatureGuestAnnounce, Requires: FeatureCtrlVQ},
}

// supported returns what the driver implements on this kind of transport
// and the user mask as given to virtio.Negotiate: VERSION_1 cannot be
// masked off a modern transport, ANY_LAYOUT is a legacy-only bit, and
// RING_PACKED a modern-only one (a legacy device has 32 feature bits and
// split rings only).
func supported(mask uint64, legacy bool) (supports, userMask uint64) {
	supports = Implemented
	if mask == 0 {
		mask = ^uint64(0)
	}
	if legacy {
		supports &^= virtio.FeatureRingPacked
	} else {
		supports &^= virtio.FeatureAnyLayout
		mask |= virtio.FeatureVersion1
	}
	return supports, mask
}

// headerLen is the size of struct virtio_net_hdr for the accepted features:
// num_buffers is present with VERSION_1 or MRG_RXBUF (virtio 1.2 §5.1.6).
func headerLen(features uint64) int {
	if features&(virtio.FeatureVersion1|FeatureMrgRxbuf) != 0 {
		return HeaderLenMrg
	}
	return HeaderLenLegacy
}

var featureNames = map[uint64]string{
	FeatureCsum: "CSUM", FeatureGuestCsum: "GUEST_CSUM", FeatureCtrlGuestOffload: "CTRL_GUEST_OFFLOADS",
	FeatureMTU: "MTU", FeatureMAC: "MAC", FeatureGSO: "GSO", FeatureGuestTSO4: "GUEST_TSO4",
	FeatureGuestTSO6: "GUEST_TSO6", FeatureGuestECN: "GUEST_ECN", FeatureGuestUFO: "GUEST_UFO",
	FeatureHostTSO4: "HOST_TSO4", FeatureHostTSO6: "HOST_TSO6", FeatureHostECN: "HOST_ECN",
	FeatureHostUFO: "HOST_UFO", FeatureMrgRxbuf: "MRG_RXBUF", FeatureStatus: "STATUS",
	FeatureCtrlVQ: "CTRL_VQ", FeatureCtrlRx: "CTRL_RX", FeatureCtrlVLAN: "CTRL_VLAN",
	FeatureCtrlRxExtra: "CTRL_RX_EXTRA", FeatureGuestAnnounce: "GUEST_ANNOUNCE", FeatureMQ: "MQ",
	FeatureCtrlMACAddr: "CTRL_MAC_ADDR", FeatureHashReport: "HASH_REPORT", FeatureRSS: "RSS",
	FeatureRSCExt: "RSC_EXT", FeatureStandby: "STANDBY", FeatureSpeedDuplex: "SPEED_DUPLEX",
	virtio.FeatureNotifyOnEmpty: "NOTIFY_ON_EMPTY", virtio.FeatureAnyLayout: "ANY_LAYOUT",
	virtio.FeatureIndirectDesc: "INDIRECT_DESC", virtio.FeatureEventIdx: "EVENT_IDX",
	virtio.FeatureVersion1: "VERSION_1", virtio.FeatureAccessPlatform: "ACCESS_PLATFORM",
	virtio.FeatureRingPacked: "RING_PACKED", virtio.FeatureInOrder: "IN_ORDER",
	virtio.FeatureOrderPlatform: "ORDER_PLATFORM", virtio.FeatureSRIOV: "SR_IOV",
	virtio.FeatureNotifData: "NOTIFICATION_DATA", virtio.FeatureRingReset: "RING_RESET",
}

// FeatureString names the bits of f, for logs and test failures.
func FeatureString(f uint64) string {
	var names []string
	for f != 0 {
		bit := uint64(1) << bits.TrailingZeros64(f)
		f &^= bit
		if n, ok := featureNames[bit]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("bit%d", bits.TrailingZeros64(bit)))
		}
	}
	return strings.Join(names, "|")
}
