package network

import (
	"net/netip"
	"testing"
	"time"
)

func TestConfigFromArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(Config) bool
		err  bool
	}{
		{"no words means DHCP", nil, func(c Config) bool { return !c.Address.IsValid() }, false},
		{"static address, gateway and two name servers",
			[]string{"ip=10.0.2.15/24", "gw=10.0.2.2", "dns=10.0.2.3,1.1.1.1", "GODEBUG=x"},
			func(c Config) bool {
				return c.Address == netip.MustParsePrefix("10.0.2.15/24") && c.Gateway == netip.MustParseAddr("10.0.2.2") &&
					len(c.DNS) == 2 && c.DNS[1] == netip.MustParseAddr("1.1.1.1")
			}, false},
		{"driver options", []string{"virtio_net.features=0x8000", "virtio_net.legacy=1", "virtio_net.intx=true", "virtio_net.queue=512"},
			func(c Config) bool {
				return c.Driver.FeatureMask == 0x8000 && c.Transport.ForceLegacy && c.Transport.NoMSIX && c.Driver.QueueSize == 512
			}, false},
		{"virtio_net.packed=0 masks RING_PACKED only", []string{"virtio_net.packed=0"},
			func(c Config) bool { return c.Driver.FeatureMask == ^uint64(0)&^(1<<34) }, false},
		{"virtio_net.packed=0 narrows a feature mask given after it", []string{"virtio_net.packed=0", "virtio_net.features=0x400008000"},
			func(c Config) bool { return c.Driver.FeatureMask == 0x8000 }, false},
		{"packed rings are allowed unless turned off", []string{"virtio_net.packed=1"}, func(c Config) bool { return c.Driver.FeatureMask == 0 }, false},
		{"RACK is off unless asked for", []string{"ip=10.0.2.15/24"}, func(c Config) bool { return !c.TCPRACK }, false},
		{"tcp.rack=1 turns RACK on", []string{"tcp.rack=1"}, func(c Config) bool { return c.TCPRACK }, false},
		{"tcp.ackdelay sets the ACK delay", []string{"tcp.ackdelay=500us"}, func(c Config) bool { return c.ACKDelay == 500*time.Microsecond }, false},
		{"delayed ACKs are off unless asked for", []string{"ip=10.0.2.15/24"}, func(c Config) bool { return c.ACKDelay == 0 }, false},
		{"a bad ACK delay is an error", []string{"tcp.ackdelay=soon"}, nil, true},
		{"words without = and unknown keys are ignored", []string{"verbose", "port=80"}, func(c Config) bool { return !c.Address.IsValid() }, false},
		{"a bad address is an error", []string{"ip=10.0.2.15"}, nil, true},
		{"a bad name server is an error", []string{"dns=10.0.2.3,nope"}, nil, true},
		{"a bad feature mask is an error", []string{"virtio_net.features=lots"}, nil, true},
		{"virtio-mmio devices come from the words QEMU's microvm and Firecracker add",
			[]string{"virtio_mmio.device=512@0xfeb00e00:12", "virtio_mmio.device=4K@0xd0001000:6"},
			func(c Config) bool {
				return len(c.MMIO) == 2 && c.MMIO[0].Base == 0xfeb00e00 && c.MMIO[0].IRQ == 12 && c.MMIO[1].Size == 4096
			}, false},
		{"a bad virtio-mmio device word is an error", []string{"virtio_mmio.device=512@0xfeb00e00"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ConfigFromArgs(tc.args)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if err == nil && !tc.want(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}
