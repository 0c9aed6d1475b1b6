package network

import (
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestLeaseTimersFollowTheServerUnlessOutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name         string
		t1, t2       uint32 // options 58 and 59 in seconds; 0: absent
		want1, want2 time.Duration
	}{
		{"defaults: half and seven eighths", 0, 0, 50 * time.Second, 87500 * time.Millisecond},
		{"server's T1 and T2", 30, 60, 30 * time.Second, 60 * time.Second},
		{"T2 before T1: defaults", 60, 30, 50 * time.Second, 87500 * time.Millisecond},
		{"T2 past the lease: defaults", 30, 200, 50 * time.Second, 87500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mods := []dhcpv4.Modifier{dhcpv4.WithLeaseTime(100)}
			if tc.t1 != 0 {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(time.Duration(tc.t1)*time.Second)))
			}
			if tc.t2 != 0 {
				mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(time.Duration(tc.t2)*time.Second)))
			}
			ack, err := dhcpv4.New(mods...)
			if err != nil {
				t.Fatal(err)
			}
			t1, t2 := leaseTimers(ack, ack.IPAddressLeaseTime(0))
			if t1 != tc.want1 || t2 != tc.want2 {
				t.Errorf("T1 %v T2 %v, want %v %v", t1, t2, tc.want1, tc.want2)
			}
		})
	}
}
