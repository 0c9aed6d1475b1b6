package virtqueue

import (
	"fmt"
	"testing"
)

// BenchmarkRoundTrip measures one chain's life on the driver side: Add,
// Kick (publish and notification decision), and Pop of its completion,
// with the device's part reduced to writing the used entry. ns/op is per
// chain; allocs/op must be 0. The split and packed sub-benchmarks run the
// same shapes, so their ns/op compare the two ring formats.
func BenchmarkRoundTrip(b *testing.B) {
	type shape struct {
		name string
		opts Options
		bufs []Buffer
	}
	hdr := Buffer{Addr: 0x1000, Len: 12}
	page := Buffer{Addr: 0x2000, Len: 4096, Writable: true}
	payload := Buffer{Addr: 0x3000, Len: 1500}
	shapes := []shape{
		{"rx page", Options{Size: 256}, []Buffer{page}},
		{"rx page event_idx", Options{Size: 256, EventIdx: true}, []Buffer{page}},
		{"tx hdr+payload direct", Options{Size: 256, EventIdx: true}, []Buffer{hdr, payload}},
		{"tx hdr+payload indirect", Options{Size: 256, EventIdx: true, Indirect: true}, []Buffer{hdr, payload}},
		{"tx 18 buffers indirect", Options{Size: 256, EventIdx: true, Indirect: true}, append([]Buffer{hdr}, repeat(payload, 17)...)},
	}
	for _, batch := range []int{1, 64} {
		for _, s := range shapes {
			b.Run(fmt.Sprintf("packed/%s/batch=%d", s.name, batch), func(b *testing.B) {
				q, dev, _ := newPackedQueue(b, s.opts)
				slots := len(s.bufs)
				if s.opts.Indirect && slots > 1 {
					slots = 1
				}
				ids := make([]uint16, batch)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					for j := range ids {
						id, err := q.Add(s.bufs)
						if err != nil {
							b.Fatal(err)
						}
						ids[j] = id
					}
					q.Kick()
					for _, id := range ids {
						dev.completeAs(id, 0, slots)
					}
					for range ids {
						if _, _, ok, err := q.Pop(); !ok || err != nil {
							b.Fatal(ok, err)
						}
					}
				}
			})
			b.Run(fmt.Sprintf("split/%s/batch=%d", s.name, batch), func(b *testing.B) {
				q, dev, _ := newQueue(b, s.opts)
				heads := make([]uint16, batch)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					for j := range heads {
						h, err := q.Add(s.bufs)
						if err != nil {
							b.Fatal(err)
						}
						heads[j] = h
					}
					q.Kick()
					for _, h := range heads {
						dev.complete(uint32(h), 0)
					}
					for range heads {
						if _, _, ok, err := q.Pop(); !ok || err != nil {
							b.Fatal(ok, err)
						}
					}
				}
			})
		}
	}
}

func repeat(b Buffer, n int) []Buffer {
	out := make([]Buffer, n)
	for i := range out {
		out[i] = b
	}
	return out
}
