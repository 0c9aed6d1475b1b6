package virtiopci_test

import (
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiopci"
)

// BenchmarkNotify measures the notification path (the one register write a
// TX or RX refill makes) through the fake machine; the fake's routing is
// most of the cost, the point is zero allocations in the transport.
func BenchmarkNotify(b *testing.B) {
	for _, l := range []struct {
		name string
		l    layout
	}{{"modern", modernOnly}, {"legacy", legacyOnly}} {
		b.Run(l.name, func(b *testing.B) {
			d := newFakeDev(v1, netConfig(), 256, 256)
			d.discardNotifies = true
			fm := newFakeMachine(l.l, d)
			tr, err := virtiopci.Open(fm.pdev, virtiopci.Platform{IO: fm.m, Mapper: fm.m}, virtiopci.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
				b.Fatal(err)
			}
			desc, avail, used := legacyRing(256, 0x100000)
			if err := tr.SetupQueue(1, 256, desc, avail, used); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tr.Notify(1)
			}
		})
	}
}
