package virtiopci_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

// FuzzOpenModern gives the transport arbitrary virtio capabilities (types,
// BARs, offsets, lengths, notify multipliers) and queue parameters (sizes,
// notify offsets), then drives the whole bring-up. Whatever the device
// says, the transport must not panic or hang, and must never touch a
// register outside what it mapped.
func FuzzOpenModern(f *testing.F) {
	good := func(typ, bar uint8, off, length, mult uint32) []byte {
		b := make([]byte, 14)
		b[0], b[1] = typ, bar
		binary.LittleEndian.PutUint32(b[2:], off)
		binary.LittleEndian.PutUint32(b[6:], length)
		binary.LittleEndian.PutUint32(b[10:], mult)
		return b
	}
	var seed []byte
	seed = append(seed, 3, 0, 1, 2, 0, 0) // 3 queues: max sizes (log2) and notify offsets
	seed = append(seed, good(1, 4, commonAt, structSize, 0)...)
	seed = append(seed, good(3, 4, isrAt, structSize, 0)...)
	seed = append(seed, good(4, 4, deviceAt, 12, 0)...)
	seed = append(seed, good(2, 4, notifyAt, structSize, 4)...)
	f.Add(seed)
	bad := append([]byte(nil), seed...)
	bad[4] = 0xFF // a notify offset far past the structure
	f.Add(bad)

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 6 {
			return
		}
		nq := int(data[0] % 4)
		d := newFakeDev(v1|featMAC, netConfig())
		for q := 0; q < nq; q++ {
			d.queues = append(d.queues, fakeQueue{max: uint16(1) << (data[1+q] % 16), notifyOff: uint16(data[4]) << (q * 3 % 8), vector: 0xFFFF})
		}
		var caps []pcitest.Cap
		for rest := data[6:]; len(rest) >= 14 && len(caps) < 8; rest = rest[14:] {
			off := binary.LittleEndian.Uint32(rest[2:]) & 0x7FFF
			length := binary.LittleEndian.Uint32(rest[6:]) & 0x1FFF
			if rest[0]%5 == 2 {
				caps = append(caps, virtioCap(rest[0]%5, rest[1]%8, off, length, binary.LittleEndian.Uint32(rest[10:])))
			} else {
				caps = append(caps, virtioCap(rest[0]%5, rest[1]%8, off, length))
			}
		}
		if caps == nil {
			return
		}
		l := layout{deviceID: netDevice, modernCaps: true, msixVectors: 4, caps: caps}
		fm := newFakeMachine(l, d)
		msi := &fakeMSI{}
		tr, err := virtiopci.Open(fm.pdev, virtiopci.Platform{IO: fm.m, Mapper: fm.m, MSI: msi, Lines: &fakeLines{}},
			virtiopci.Options{MaxConfigRetries: 4, ResetTimeout: time.Millisecond})
		if err == nil {
			if _, err := virtio.Negotiate(tr, v1|featMAC, ^uint64(0)); err == nil {
				tr.Interrupts(tr.NumQueues())
				for q := 0; q < tr.NumQueues()+1; q++ {
					size := tr.QueueMaxSize(q)
					desc, avail, used := legacyRing(max(size, 1), 0x100000+uint64(q)<<20)
					tr.SetupQueue(q, size, desc, avail, used)
					tr.Notify(q)
				}
				for off := -1; off < 16; off++ {
					for _, n := range []int{1, 2, 4, 6, 8} {
						tr.ReadConfig(off, make([]byte, n))
					}
				}
				virtio.DriverOK(tr)
			}
		}
		if faults := fm.m.Faults(); len(faults) != 0 {
			t.Fatalf("register accesses outside the mapped regions: %q", faults)
		}
	})
}
