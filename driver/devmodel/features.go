package devmodel

// virtio-net feature bits (virtio 1.2 §5.1.3). They carry the same names and
// values as the driver's; they are repeated here so that the driver's own
// tests can import this package without an import cycle. The
// transport-independent bits are in package virtio.
const (
	FeatureCsum             uint64 = 1 << 0  // device completes partial checksums on TX
	FeatureGuestCsum        uint64 = 1 << 1  // driver accepts partial checksums on RX
	FeatureCtrlGuestOffload uint64 = 1 << 2  // offloads reconfigurable through the control queue
	FeatureMTU              uint64 = 1 << 3  // config mtu is valid
	FeatureMAC              uint64 = 1 << 5  // config mac is valid
	FeatureGuestTSO4        uint64 = 1 << 7  // driver receives TCPv4 GSO packets
	FeatureGuestTSO6        uint64 = 1 << 8  // driver receives TCPv6 GSO packets
	FeatureGuestECN         uint64 = 1 << 9  // driver receives GSO packets with the ECN bit
	FeatureGuestUFO         uint64 = 1 << 10 // driver receives UFO packets
	FeatureHostTSO4         uint64 = 1 << 11 // device segments TCPv4 GSO packets
	FeatureHostTSO6         uint64 = 1 << 12 // device segments TCPv6 GSO packets
	FeatureHostECN          uint64 = 1 << 13 // device segments GSO packets with the ECN bit
	FeatureHostUFO          uint64 = 1 << 14 // device fragments UFO packets
	FeatureMrgRxbuf         uint64 = 1 << 15 // driver merges receive buffers (num_buffers)
	FeatureStatus           uint64 = 1 << 16 // config status is valid
	FeatureCtrlVQ           uint64 = 1 << 17 // control virtqueue present
	FeatureCtrlRx           uint64 = 1 << 18 // RX mode control (promiscuous, all-multicast)
	FeatureCtrlVLAN         uint64 = 1 << 19 // VLAN filtering control
	FeatureGuestAnnounce    uint64 = 1 << 21 // driver sends gratuitous packets on request
	FeatureMQ               uint64 = 1 << 22 // multiqueue (not modelled: never accepted)
	FeatureCtrlMACAddr      uint64 = 1 << 23 // MAC address set through the control queue
)

// featureDeps lists the features a driver must not accept without one of
// their prerequisites (virtio 1.2 §5.1.3.1). A modern device refuses
// FEATURES_OK when they are violated.
var featureDeps = [...]struct {
	feature uint64 // the dependent feature
	anyOf   uint64 // at least one of these must be accepted too
}{
	{FeatureGuestTSO4, FeatureGuestCsum},
	{FeatureGuestTSO6, FeatureGuestCsum},
	{FeatureGuestUFO, FeatureGuestCsum},
	{FeatureGuestECN, FeatureGuestTSO4 | FeatureGuestTSO6},
	{FeatureHostTSO4, FeatureCsum},
	{FeatureHostTSO6, FeatureCsum},
	{FeatureHostUFO, FeatureCsum},
	{FeatureHostECN, FeatureHostTSO4 | FeatureHostTSO6},
	{FeatureCtrlRx, FeatureCtrlVQ},
	{FeatureCtrlVLAN, FeatureCtrlVQ},
	{FeatureGuestAnnounce, FeatureCtrlVQ},
	{FeatureMQ, FeatureCtrlVQ},
	{FeatureCtrlMACAddr, FeatureCtrlVQ},
}

// missingDependency returns the first accepted feature whose prerequisites
// were not accepted, or 0.
func missingDependency(f uint64) uint64 {
	for _, d := range featureDeps {
		if f&d.feature != 0 && f&d.anyOf == 0 {
			return d.feature
		}
	}
	return 0
}

// Queue indices of the network device (virtio 1.2 §5.1.2) without MQ.
const (
	QueueRX   = 0 // receiveq1
	QueueTX   = 1 // transmitq1
	QueueCtrl = 2 // controlq, present with CTRL_VQ
)

// Device configuration layout (virtio 1.2 §5.1.4), the same for legacy and
// modern transports.
const (
	ConfigMAC       = 0  // mac[6]
	ConfigStatus    = 6  // status le16, valid with STATUS
	ConfigMaxPairs  = 8  // max_virtqueue_pairs le16, valid with MQ
	ConfigMTU       = 10 // mtu le16, valid with MTU
	configSpaceSize = 12 // bytes of config modelled
)

// Bits of the config status field (virtio 1.2 §5.1.4).
const (
	StatusLinkUp   uint16 = 1 // VIRTIO_NET_S_LINK_UP
	StatusAnnounce uint16 = 2 // VIRTIO_NET_S_ANNOUNCE
)
