package devmodel

import (
	"encoding/binary"
	"fmt"
)

// Control queue classes, commands and acks (virtio 1.2 §5.1.6.5).
const (
	CtrlClassRx            = 0 // VIRTIO_NET_CTRL_RX
	CtrlRxPromisc          = 0 // VIRTIO_NET_CTRL_RX_PROMISC
	CtrlRxAllmulti         = 1 // VIRTIO_NET_CTRL_RX_ALLMULTI
	CtrlClassMAC           = 1 // VIRTIO_NET_CTRL_MAC
	CtrlMACTableSet        = 0 // VIRTIO_NET_CTRL_MAC_TABLE_SET
	CtrlMACAddrSet         = 1 // VIRTIO_NET_CTRL_MAC_ADDR_SET
	CtrlClassVLAN          = 2 // VIRTIO_NET_CTRL_VLAN
	CtrlClassAnnounce      = 3 // VIRTIO_NET_CTRL_ANNOUNCE
	CtrlAnnounceAck        = 0 // VIRTIO_NET_CTRL_ANNOUNCE_ACK
	CtrlClassGuestOffloads = 5 // VIRTIO_NET_CTRL_GUEST_OFFLOADS
	CtrlGuestOffloadsSet   = 0 // VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET
	CtrlOK                 = 0 // VIRTIO_NET_OK
	CtrlErr                = 1 // VIRTIO_NET_ERR
)

// processCtrl drains the control queue: each chain is class, command and
// data readable, then one writable ack byte (virtio 1.2 §5.1.6.5).
func (n *Net) processCtrl() {
	r := n.rings[QueueCtrl]
	if r == nil {
		return
	}
	done := 0
	for {
		c, ok, err := r.pop()
		if err != nil {
			n.fail(err)
			return
		}
		if !ok {
			break
		}
		if c.readLen < 2 || c.writeLen < 1 {
			// QEMU: "virtio-net ctrl missing headers".
			n.fail(&DriverError{Queue: QueueCtrl, Head: int(c.head), Err: ErrCtrlHeader, What: fmt.Sprintf("%d readable, %d writable bytes", c.readLen, c.writeLen)})
			return
		}
		cmd := c.gather(nil)
		ack := n.ctrlCommand(cmd[0], cmd[1], cmd[2:])
		n.stats.CtrlCommands++
		if ack != CtrlOK {
			n.stats.CtrlErrors++
		}
		scatter(c.writable, 0, []byte{ack})
		n.putUsed(QueueCtrl, c.head, 1)
		done++
	}
	if done > 0 {
		n.notifyUsed(QueueCtrl)
	}
	r.setNotify(true)
}

// ctrlCommand carries out one control command and returns the ack.
func (n *Net) ctrlCommand(class, cmd uint8, data []byte) uint8 {
	switch class {
	case CtrlClassRx:
		if !n.negotiated(FeatureCtrlRx) || len(data) < 1 {
			return CtrlErr
		}
		on := data[0] != 0
		switch cmd {
		case CtrlRxPromisc:
			n.promisc = on
		case CtrlRxAllmulti:
			n.allmulti = on
		default:
			return CtrlErr // ALLUNI, NOMULTI... need CTRL_RX_EXTRA, not offered
		}
		return CtrlOK
	case CtrlClassMAC:
		switch cmd {
		case CtrlMACAddrSet:
			if !n.negotiated(FeatureCtrlMACAddr) || len(data) != 6 {
				return CtrlErr
			}
			copy(n.mac[:], data)
			return CtrlOK
		case CtrlMACTableSet:
			return n.macTableSet(data)
		}
		return CtrlErr
	case CtrlClassVLAN:
		if !n.negotiated(FeatureCtrlVLAN) || len(data) != 2 || cmd > 1 {
			return CtrlErr
		}
		return CtrlOK // VLAN filtering is not modelled: every tag passes
	case CtrlClassAnnounce:
		if cmd != CtrlAnnounceAck || !n.negotiated(FeatureGuestAnnounce) || !n.announce {
			return CtrlErr
		}
		n.announce = false
		return CtrlOK
	case CtrlClassGuestOffloads:
		if cmd != CtrlGuestOffloadsSet || !n.negotiated(FeatureCtrlGuestOffload) || len(data) != 8 {
			return CtrlErr
		}
		off := binary.LittleEndian.Uint64(data)
		if off&^(n.features&guestOffloadBits) != 0 {
			return CtrlErr
		}
		n.guestOffloads = off
		return CtrlOK
	}
	return CtrlErr
}

// macTableSet parses two MAC tables (unicast, then multicast), each a le32
// count followed by 6-byte entries, and keeps the multicast one as the
// filter. The unicast table is accepted and ignored (the model filters on
// its own MAC).
func (n *Net) macTableSet(data []byte) uint8 {
	mc := map[[6]byte]bool{}
	for table := 0; table < 2; table++ {
		if len(data) < 4 {
			return CtrlErr
		}
		cnt := binary.LittleEndian.Uint32(data)
		data = data[4:]
		if uint64(cnt)*6 > uint64(len(data)) {
			return CtrlErr
		}
		for i := 0; i < int(cnt); i++ {
			if table == 1 {
				var m [6]byte
				copy(m[:], data[6*i:])
				mc[m] = true
			}
		}
		data = data[6*cnt:]
	}
	if len(data) != 0 {
		return CtrlErr
	}
	n.multicast = mc
	return CtrlOK
}
