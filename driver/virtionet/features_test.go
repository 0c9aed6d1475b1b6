package virtionet

import (
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

func TestSelectFeatures(t *testing.T) {
	const all = ^uint64(0)
	v1 := virtio.FeatureVersion1
	for _, tt := range []struct {
		name    string
		offered uint64
		mask    uint64
		legacy  bool
		want    uint64
		wantErr bool
	}{
		{"modern device: high bits kept", v1 | FeatureMAC | FeatureMTU | virtio.FeatureEventIdx, all, false, v1 | FeatureMAC | FeatureMTU | virtio.FeatureEventIdx, false},
		{"modern device without VERSION_1 refused", FeatureMAC, all, false, 0, true},
		{"mask cannot drop VERSION_1 on modern", v1 | FeatureMAC, FeatureMAC, false, v1 | FeatureMAC, false},
		{"legacy device: bits above 31 ignored", v1 | FeatureMAC | virtio.FeatureAnyLayout, all, true, FeatureMAC | virtio.FeatureAnyLayout, false},
		{"ANY_LAYOUT dropped on modern", v1 | virtio.FeatureAnyLayout, all, false, v1, false},
		{"unimplemented offers not taken", v1 | FeatureMQ | FeatureCtrlVLAN | virtio.FeatureInOrder | FeatureSpeedDuplex, all, false, v1, false},
		{"RING_PACKED taken on modern", v1 | virtio.FeatureRingPacked, all, false, v1 | virtio.FeatureRingPacked, false},
		{"RING_PACKED masked off keeps split rings", v1 | virtio.FeatureRingPacked | FeatureMAC, all &^ virtio.FeatureRingPacked, false, v1 | FeatureMAC, false},
		{"RING_PACKED never on legacy", v1 | virtio.FeatureRingPacked | FeatureMAC, all, true, FeatureMAC, false},
		{"user mask removes a feature", v1 | FeatureMrgRxbuf | FeatureMAC, all &^ FeatureMrgRxbuf, false, v1 | FeatureMAC, false},
		{"GUEST_ANNOUNCE needs CTRL_VQ", v1 | FeatureGuestAnnounce, all, false, v1, false},
		{"GUEST_ANNOUNCE with CTRL_VQ", v1 | FeatureGuestAnnounce | FeatureCtrlVQ, all, false, v1 | FeatureGuestAnnounce | FeatureCtrlVQ, false},
		{"CTRL_RX masked with CTRL_VQ", v1 | FeatureCtrlRx | FeatureCtrlVQ, all &^ FeatureCtrlVQ, false, v1, false},
		{"HOST_TSO4 needs CSUM", v1 | FeatureHostTSO4 | FeatureHostECN, all, false, v1, false},
		{"HOST_ECN dropped with TSO dropped by the mask", v1 | FeatureCsum | FeatureHostTSO4 | FeatureHostECN, all &^ FeatureHostTSO4, false, v1 | FeatureCsum, false},
		{"GUEST_TSO needs GUEST_CSUM", v1 | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN, all, false, v1, false},
		{"GUEST offloads complete", v1 | FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN, all, false, v1 | FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// What Open's virtio.Negotiate accepts, without a device.
			supports, mask := supported(tt.mask, tt.legacy)
			got, err := virtio.SelectFeatures(tt.offered, supports, mask, tt.legacy, featureDeps...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("SelectFeatures = %s, want %s", FeatureString(got), FeatureString(tt.want))
			}
		})
	}
}

func TestFeatureStringNamesEveryBit(t *testing.T) {
	if got, want := FeatureString(FeatureMrgRxbuf|virtio.FeatureVersion1|1<<50), "MRG_RXBUF|VERSION_1|bit50"; got != want {
		t.Fatalf("FeatureString = %q, want %q", got, want)
	}
}

func TestRingPackedIsOfferedToModernTransportsOnly(t *testing.T) {
	if s, _ := supported(0, true); s&virtio.FeatureRingPacked != 0 {
		t.Error("a legacy transport is told the driver supports RING_PACKED")
	}
	if s, _ := supported(0, false); s&virtio.FeatureRingPacked == 0 {
		t.Error("a modern transport is not told the driver supports RING_PACKED")
	}
}
