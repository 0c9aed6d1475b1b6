package virtionet

import (
	"fmt"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// sendFast is send without allocation, for benchmarks: data holds the
// header room and the frame.
func (h *rxHarness) sendFast(data []byte) {
	hl := h.r.hdrLen
	if !h.r.mergeable {
		head, chain, _ := h.q.takeAvail()
		h.q.pushUsed(uint32(head), uint32(h.write(chain, data)))
		return
	}
	var first virtqueue.Buffer
	used := 0
	rest := data
	for len(rest) > 0 {
		head, chain, ok := h.q.takeAvail()
		if !ok {
			h.t.Fatal("ring too small for the packet")
		}
		if used == 0 {
			first = chain[0]
		}
		n := h.write(chain, rest)
		h.q.pushUsed(uint32(head), uint32(n))
		rest = rest[n:]
		used++
	}
	// The driver looks only when the benchmark polls, after this.
	hdr := Header{NumBuffers: uint16(used)}
	dst, _ := h.mem.Slice(first.Addr, hl)
	hdr.Encode(dst)
}

// BenchmarkRxReassembly measures the receive path alone (used entry to
// netstack PacketBuffer, refill included) against an in-memory device:
// ns/op is per packet, B/s counts frame bytes, allocs/op is per packet.
func BenchmarkRxReassembly(b *testing.B) {
	for _, m := range []struct {
		name     string
		features uint64
	}{
		{"mergeable", virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestCsum | FeatureGuestTSO4},
		{"big", virtio.FeatureVersion1 | FeatureGuestCsum | FeatureGuestTSO4},
	} {
		for _, size := range []int{64, 1514, 9014, 65000} {
			b.Run(fmt.Sprintf("%s/%d", m.name, size), func(b *testing.B) {
				h := newRxHarness(b, 256, m.features, 1500)
				h.keep = false
				data := make([]byte, h.r.hdrLen+size)
				copy(data[h.r.hdrLen:], frameOf(size, 1))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					h.sendFast(data)
					h.r.Poll(defaultRxBudget)
					h.r.Refill()
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
				if s := h.c.snapshot(); s.RxPackets != uint64(b.N) {
					b.Fatalf("delivered %d of %d (%+v)", s.RxPackets, b.N, s)
				}
			})
		}
	}
}

// BenchmarkTx measures the transmit path alone (WritePackets to the
// device's completion, reclaim included) with the same packet resent:
// allocs/op is the driver's own allocation per packet.
func BenchmarkTx(b *testing.B) {
	tso := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1448, L3HdrLen: 20}
	for _, tt := range []struct {
		name    string
		payload int
		gso     stack.GSO
	}{
		{"small", 10, stack.GSO{}},
		{"mtu", 1460, tso},
		{"tso64k", 65000, tso},
	} {
		b.Run(tt.name, func(b *testing.B) {
			h := newTxHarness(b, 256, virtio.FeatureVersion1|FeatureCsum|FeatureHostTSO4|FeatureHostTSO6|virtio.FeatureIndirectDesc)
			rel := false
			pkt := tcpPacket(frameOf(tt.payload, 1), tt.gso, &rel)
			defer pkt.DecRef()
			pkts := []*stack.PacketBuffer{pkt}
			b.SetBytes(int64(pkt.Size()))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if n, err := h.tx.Write(pkts); n != 1 {
					b.Fatalf("Write = %d, %v", n, err)
				}
				head, _, _ := h.q.takeAvail()
				h.q.pushUsed(uint32(head), 0)
				h.tx.ReleaseSent()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkRxRingCapacity reports how many packets a 256-entry RX ring
// holds: with MRG_RXBUF (one page per entry; a packet takes as many entries
// as it needs) versus big buffers (every entry-chain sized for 64 KiB),
// with and without indirect descriptors. The metrics are the point; the
// timing is of one ring fill.
func BenchmarkRxRingCapacity(b *testing.B) {
	for _, tt := range []struct {
		name     string
		features uint64
		indirect bool
	}{
		{"mergeable", virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestCsum | FeatureGuestTSO4, false},
		{"big", virtio.FeatureVersion1 | FeatureGuestCsum | FeatureGuestTSO4, false},
		{"big+indirect", virtio.FeatureVersion1 | FeatureGuestCsum | FeatureGuestTSO4 | virtio.FeatureIndirectDesc, true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var r *rxRing
			for range b.N {
				mem := &virtqueue.HeapDMA{AutoRegister: true}
				q := newRingDeviceOpts(b, mem, virtqueue.Options{Size: 256, Indirect: tt.indirect})
				r = newRxRing(q, mem, tt.features, 1500, &counters{})
				r.Refill()
			}
			bufs := r.q.InFlight()
			pages := bufs * len(r.bufLens)
			hl := r.hdrLen
			mtuPkts, bigPkts := bufs, bufs
			if r.mergeable {
				bigPkts = bufs / ((hl + 65000 + pageSize - 1) / pageSize)
			}
			b.ReportMetric(float64(mtuPkts), "1500B-pkts/ring")
			b.ReportMetric(float64(bigPkts), "64KiB-pkts/ring")
			b.ReportMetric(float64(pages*pageSize)/1024, "KiB-posted")
		})
	}
}
