package devmodel

import (
	"errors"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

// FuzzHostileDriver builds descriptor tables and avail rings from the fuzz
// input: the device must never panic, and whatever it rejects must be a
// counted DriverError.
func FuzzHostileDriver(f *testing.F) {
	f.Add([]byte{0, 12, 1, 1, 1, 60, 0, 0, 0, 0}, uint8(1))
	f.Add([]byte{0, 40, 3, 1, 1, 40, 2, 0, 2, 8, 4, 0}, uint8(2))
	f.Add([]byte{4, 16, 4, 0, 0, 12, 0, 5}, uint8(3))
	f.Add([]byte{0, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, heads uint8) {
		feats := FeatureMrgRxbuf | FeatureCsum | FeatureHostTSO4 | virtio.FeatureIndirectDesc | virtio.FeatureEventIdx
		d := newTestDev(t, Config{Features: feats, QueueSize: 16}, feats)
		var pool [4]testBuf
		for i := range pool {
			pool[i] = alloc(t, d.mem, 96, true)
		}
		for _, q := range []*testQueue{d.rx, d.tx} {
			for i := 0; i+4 <= len(data) && i/4 < q.size; i += 4 {
				addr := uint64(0x1000) // outside memory
				if k := int(data[i]) % 5; k < 4 {
					addr = pool[k].phys
				}
				length := uint32(data[i+1]) % 112
				if data[i+2]&descFIndirect != 0 {
					length = 16 * uint32(1+data[i+1]%4)
				}
				q.writeDesc(q.ring, i/4, addr, length, uint16(data[i+2]&7), uint16(data[i+3]%20))
			}
			for h := 0; h < int(heads%8); h++ {
				q.publish(uint16(h * 3 % 20))
			}
		}
		d.n.Inject(Frame{Data: pattern(150)})
		d.notify(QueueTX)
		d.notify(QueueRX)
		s := d.n.Stats()
		var de *DriverError
		if s.DriverErrors > 0 && !errors.As(s.LastError, &de) {
			t.Fatalf("driver error not a *DriverError: %v", s.LastError)
		}
	})
}

// FuzzSegmentTCP cuts arbitrary frames: never a panic, and every segment
// carries at most mss payload bytes.
func FuzzSegmentTCP(f *testing.F) {
	frame, _, _ := tcpFrame(tcpSpec{payload: pattern(3000), partial: true, gso: true, flags: 0x18})
	f.Add(frame, uint16(1448))
	v6, _, _ := tcpFrame(tcpSpec{v6: true, payload: pattern(100), flags: 0x10})
	f.Add(v6, uint16(1))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, frame []byte, mss uint16) {
		l, perr := parseTCP(frame)
		_, err := segmentTCP(frame, int(mss), nil, func(seg []byte) {
			if len(seg)-l.end > int(mss) {
				t.Fatalf("segment of %d payload bytes, mss %d", len(seg)-l.end, mss)
			}
		})
		if perr != nil && err == nil {
			t.Fatalf("segmented a frame that does not parse")
		}
		if len(frame) > 0 {
			completeChecksum(append([]byte(nil), frame...), int(mss)%len(frame), int(mss>>8))
		}
	})
}
