package devmodel_test

import (
	"testing"

	"github.com/govirtio/govirtio/driver/devmodel"
	"github.com/govirtio/govirtio/driver/virtionet"
)

// The model repeats the driver's feature bits (importing them would make an
// import cycle with the driver's own tests, which use the model); this
// keeps the two copies equal.
func TestFeatureBitsMatchTheDriver(t *testing.T) {
	pairs := []struct {
		name          string
		model, driver uint64
	}{
		{"CSUM", devmodel.FeatureCsum, virtionet.FeatureCsum},
		{"GUEST_CSUM", devmodel.FeatureGuestCsum, virtionet.FeatureGuestCsum},
		{"CTRL_GUEST_OFFLOADS", devmodel.FeatureCtrlGuestOffload, virtionet.FeatureCtrlGuestOffload},
		{"MTU", devmodel.FeatureMTU, virtionet.FeatureMTU},
		{"MAC", devmodel.FeatureMAC, virtionet.FeatureMAC},
		{"GUEST_TSO4", devmodel.FeatureGuestTSO4, virtionet.FeatureGuestTSO4},
		{"GUEST_TSO6", devmodel.FeatureGuestTSO6, virtionet.FeatureGuestTSO6},
		{"GUEST_ECN", devmodel.FeatureGuestECN, virtionet.FeatureGuestECN},
		{"GUEST_UFO", devmodel.FeatureGuestUFO, virtionet.FeatureGuestUFO},
		{"HOST_TSO4", devmodel.FeatureHostTSO4, virtionet.FeatureHostTSO4},
		{"HOST_TSO6", devmodel.FeatureHostTSO6, virtionet.FeatureHostTSO6},
		{"HOST_ECN", devmodel.FeatureHostECN, virtionet.FeatureHostECN},
		{"HOST_UFO", devmodel.FeatureHostUFO, virtionet.FeatureHostUFO},
		{"MRG_RXBUF", devmodel.FeatureMrgRxbuf, virtionet.FeatureMrgRxbuf},
		{"STATUS", devmodel.FeatureStatus, virtionet.FeatureStatus},
		{"CTRL_VQ", devmodel.FeatureCtrlVQ, virtionet.FeatureCtrlVQ},
		{"CTRL_RX", devmodel.FeatureCtrlRx, virtionet.FeatureCtrlRx},
		{"CTRL_VLAN", devmodel.FeatureCtrlVLAN, virtionet.FeatureCtrlVLAN},
		{"GUEST_ANNOUNCE", devmodel.FeatureGuestAnnounce, virtionet.FeatureGuestAnnounce},
		{"MQ", devmodel.FeatureMQ, virtionet.FeatureMQ},
		{"CTRL_MAC_ADDR", devmodel.FeatureCtrlMACAddr, virtionet.FeatureCtrlMACAddr},
	}
	for _, p := range pairs {
		if p.model != p.driver {
			t.Errorf("%s: model %#x, driver %#x", p.name, p.model, p.driver)
		}
	}
}
