package virtionet

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/govirtio/govirtio/driver/virtio"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Offsets in struct virtio_net_config (virtio 1.2 §5.1.4).
const (
	ConfigMAC               = 0  // mac[6], valid with FeatureMAC
	ConfigStatus            = 6  // le16 status, valid with FeatureStatus
	ConfigMaxVirtqueuePairs = 8  // le16, valid with FeatureMQ
	ConfigMTU               = 10 // le16 mtu, valid with FeatureMTU
)

// Bits of the config status field (virtio 1.2 §5.1.4).
const (
	StatusLinkUp   uint16 = 1 // link is up
	StatusAnnounce uint16 = 2 // the driver should announce itself (GUEST_ANNOUNCE)
)

// DefaultMTU is the MTU used when the device does not report one.
const DefaultMTU = 1500

// minMTU is the smallest MTU accepted from the device: IPv4's minimum.
const minMTU = 68

func readConfig16(t virtio.Transport, off int) uint16 {
	var b [2]byte
	t.ReadConfig(off, b[:])
	return binary.LittleEndian.Uint16(b[:])
}

// readMAC returns the device's MAC when it has one, else a random locally
// administered unicast address.
func readMAC(t virtio.Transport, features uint64) (tcpip.LinkAddress, error) {
	var mac [6]byte
	if features&FeatureMAC != 0 {
		t.ReadConfig(ConfigMAC, mac[:])
		return tcpip.LinkAddress(mac[:]), nil
	}
	return GenerateMAC()
}

// GenerateMAC returns a random locally administered unicast MAC address.
func GenerateMAC() (tcpip.LinkAddress, error) {
	var mac [6]byte
	if _, err := rand.Read(mac[:]); err != nil {
		return "", fmt.Errorf("virtionet: generating a MAC address: %w", err)
	}
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	return tcpip.LinkAddress(mac[:]), nil
}

// readMTU returns the device's MTU when it has one (validated), else def.
func readMTU(t virtio.Transport, features uint64, def int) (int, error) {
	if features&FeatureMTU == 0 {
		return def, nil
	}
	mtu := int(readConfig16(t, ConfigMTU))
	if mtu < minMTU {
		return 0, fmt.Errorf("virtionet: device MTU %d below %d", mtu, minMTU)
	}
	return mtu, nil
}

// readStatus returns the config status, or link-up when the device has no
// status field (virtio 1.2 §5.1.4.2: the link is then assumed up).
func readStatus(t virtio.Transport, features uint64) uint16 {
	if features&FeatureStatus == 0 {
		return StatusLinkUp
	}
	return readConfig16(t, ConfigStatus)
}
