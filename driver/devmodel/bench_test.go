package devmodel

import (
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

// The benchmarks call the device's queue processing directly, without the
// goroutine hand-off, to measure the model's own cost per packet.

func benchmarkRx(b *testing.B, frameLen int, feats uint64, bufSize int) {
	d := newTestDev(b, Config{Features: feats, QueueSize: 256}, feats)
	bufs := map[uint32]testBuf{}
	for i := 0; i < 256; i++ {
		bufs[uint32(d.rx.add(alloc(b, d.mem, bufSize, true)))] = testBuf{}
	}
	frame := pattern(frameLen)
	b.SetBytes(int64(frameLen))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.n.mu.Lock()
		if res := d.n.receive(Frame{Data: frame}); res != rxDone {
			b.Fatalf("receive: %d", res)
		}
		d.n.mu.Unlock()
		// Repost what was used, as a driver refilling its ring.
		for {
			id, _, ok := d.rx.pop()
			if !ok {
				break
			}
			d.rx.publish(uint16(id))
		}
	}
}

func BenchmarkRxMergeable1500(b *testing.B) {
	benchmarkRx(b, 1500, FeatureMrgRxbuf, 4096)
}

func BenchmarkRxMergeable64K(b *testing.B) {
	benchmarkRx(b, 65000, FeatureMrgRxbuf, 4096)
}

func BenchmarkRxBigBuffer1500(b *testing.B) {
	benchmarkRx(b, 1500, 0, 65562)
}

func BenchmarkTxSmall(b *testing.B) {
	d := newTestDev(b, Config{QueueSize: 256}, virtio.FeatureVersion1)
	hb := alloc(b, d.mem, HeaderLenMrgBuf, false)
	data := alloc(b, d.mem, 60, false)
	b.SetBytes(60)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.tx.add(hb, data)
		d.n.mu.Lock()
		d.n.processTX()
		d.n.mu.Unlock()
		d.tx.pop()
	}
}

func BenchmarkSegmentTSO64K(b *testing.B) {
	frame, _, _ := tcpFrame(tcpSpec{payload: pattern(65000), partial: true, gso: true, flags: 0x10})
	var buf []byte
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = segmentTCP(frame, 1448, buf, func([]byte) {})
		if err != nil {
			b.Fatal(err)
		}
	}
}
