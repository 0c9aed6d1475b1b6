package virtionet

import (
	"bytes"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// rxHarness is an rxRing on a real split queue with a test device
// (ringDevice) writing into the posted pages through HeapDMA, as a device
// would by DMA, and writing the used ring as a device would.
type rxHarness struct {
	t    testing.TB            // the running test
	q    *ringDevice           // the RX queue and its device side
	mem  *virtqueue.HeapDMA    // memory the device writes through
	r    *rxRing               // the ring under test
	c    *counters             // its counters
	got  []*stack.PacketBuffer // delivered packets, one reference each
	keep bool                  // keep delivered packets in got (else release at once)
}

func newRxHarness(t testing.TB, size int, features uint64, mtu int) *rxHarness {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	h := &rxHarness{t: t, q: newRingDevice(t, mem, size), mem: mem, c: &counters{}, keep: true}
	h.r = newRxRing(h.q, h.mem, features, mtu, h.c)
	h.r.deliver = func(pkt *stack.PacketBuffer) bool {
		if h.keep {
			h.got = append(h.got, pkt.IncRef())
		}
		return true
	}
	h.r.Refill()
	return h
}

// release gives back every delivered packet, as netstack would.
func (h *rxHarness) release() {
	for _, p := range h.got {
		p.DecRef()
	}
	h.got = nil
}

// write copies data into the buffers of chain, in order, and returns the
// bytes written.
func (h *rxHarness) write(chain []virtqueue.Buffer, data []byte) int {
	n := 0
	for _, b := range chain {
		if len(data) == 0 {
			break
		}
		m := min(int(b.Len), len(data))
		dst, err := h.mem.Slice(b.Addr, m)
		if err != nil {
			h.t.Fatalf("device: %v", err)
		}
		copy(dst, data[:m])
		data = data[m:]
		n += m
	}
	return n
}

// send plays a well-behaved device receiving frame with header hdr: over
// as many mergeable buffers as needed (setting num_buffers), or into one
// chain. It reports false when the ring has too few buffers.
func (h *rxHarness) send(hdr Header, frame []byte) bool {
	hl := h.r.hdrLen
	data := make([]byte, hl+len(frame))
	copy(data[hl:], frame)
	if !h.r.mergeable {
		head, chain, ok := h.q.takeAvail()
		if !ok {
			return false
		}
		hdr.Encode(data[:hl])
		h.q.pushUsed(uint32(head), uint32(h.write(chain, data)))
		return true
	}
	var heads []uint16
	var lens []int
	rest := data
	for len(rest) > 0 {
		head, chain, ok := h.q.takeAvail()
		if !ok {
			return false
		}
		n := h.write(chain, rest)
		heads, lens = append(heads, head), append(lens, n)
		rest = rest[n:]
	}
	hdr.NumBuffers = uint16(len(heads))
	first := h.q.inFlight()[heads[0]][0]
	dst, _ := h.mem.Slice(first.Addr, hl)
	hdr.Encode(dst)
	for i := range heads {
		h.q.pushUsed(uint32(heads[i]), uint32(lens[i]))
	}
	return true
}

// poll runs what the RX loop runs on a wakeup.
func (h *rxHarness) poll() { h.r.Service(defaultRxBudget, func() bool { return false }) }

// checkRingFull checks the invariants after a poll: the ring is full again
// and no buffer address was posted twice.
func (h *rxHarness) checkRingFull() {
	h.t.Helper()
	if h.q.reposted != 0 {
		h.t.Fatalf("%d buffers posted while already in flight", h.q.reposted)
	}
	if want := h.q.size / len(h.r.bufLens); h.q.InFlight() != want {
		h.t.Fatalf("ring holds %d buffers after refill, want %d", h.q.InFlight(), want)
	}
}

func frameOf(n int, seed byte) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = seed + byte(i*7) + byte(i>>8)
	}
	// A plausible Ethernet header, IPv4 ethertype, and an IPv4 header
	// with a correct checksum (the rest is pattern).
	if n >= 14 {
		f[12], f[13] = 0x08, 0x00
	}
	if n >= 14+header.IPv4MinimumSize {
		ip := header.IPv4(f[14:])
		ip[0] = 0x45
		ip.SetChecksum(0)
		ip.SetChecksum(^ip[:header.IPv4MinimumSize].CalculateChecksum())
	}
	return f
}

func pktBytes(p *stack.PacketBuffer) []byte {
	var b []byte
	for _, s := range p.AsSlices() {
		b = append(b, s...)
	}
	return b
}

var modes = []struct {
	name     string
	features uint64
}{
	{"mergeable modern", virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestCsum},
	{"mergeable legacy", FeatureMrgRxbuf | FeatureGuestCsum},
	{"big buffers modern", virtio.FeatureVersion1 | FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6},
	{"big buffers legacy", FeatureGuestCsum | FeatureGuestTSO4},
	{"MTU buffers modern", virtio.FeatureVersion1},
	{"MTU buffers legacy", 0},
}

func TestRxDeliversFramesIntact(t *testing.T) {
	for _, m := range modes {
		for _, size := range []int{14, 60, 127, 128, 129, 1514, 4096 - 12, 4096, 9000, 65000} {
			big := m.features&(FeatureMrgRxbuf|FeatureGuestTSO4) != 0
			if size > 1514 && !big {
				continue
			}
			t.Run(m.name+"/"+itoa(size), func(t *testing.T) {
				h := newRxHarness(t, 256, m.features, 1500)
				want := frameOf(size, byte(size))
				if !h.send(Header{}, want) {
					t.Fatal("ring too small")
				}
				h.poll()
				if len(h.got) != 1 {
					t.Fatalf("delivered %d packets, want 1 (stats %+v)", len(h.got), h.c.snapshot())
				}
				if got := pktBytes(h.got[0]); !bytes.Equal(got, want) {
					t.Fatalf("frame differs: got %d bytes, want %d", len(got), len(want))
				}
				// The head view holds the first min(128, size) bytes.
				if first := h.got[0].AsSlices()[0]; len(first) != min(size, rxCopyLen) {
					t.Fatalf("linear head is %d bytes, want %d", len(first), min(size, rxCopyLen))
				}
				s := h.c.snapshot()
				if s.RxPackets != 1 || s.RxBytes != uint64(size) || s.RxDrops() != 0 {
					t.Fatalf("stats %+v", s)
				}
				if size <= rxCopyLen && s.RxPagesUp != 0 {
					t.Fatalf("a %d-byte frame took %d pages up; want all copied", size, s.RxPagesUp)
				}
				h.checkRingFull()
				h.release()
			})
		}
	}
}

func itoa(n int) string {
	return string(bytes.TrimLeft([]byte{byte('0' + n/10000%10), byte('0' + n/1000%10), byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)}, "0"))
}

func TestRxChecksumFlagsAndGSO(t *testing.T) {
	feat := virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestCsum | FeatureGuestTSO4
	for _, tt := range []struct {
		name      string
		hdr       Header
		badIPCsum bool // the frame's IPv4 header checksum is wrong
		validated bool
		gso       bool
	}{
		{"DATA_VALID marks the checksum validated", Header{Flags: HdrFlagDataValid}, false, true, false},
		{"NEEDS_CSUM marks the checksum validated", Header{Flags: HdrFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}, false, true, false},
		{"no flags leaves verification to netstack", Header{}, false, false, false},
		{"DATA_VALID does not vouch for a bad IPv4 header checksum", Header{Flags: HdrFlagDataValid}, true, false, false},
		{"TSOv4 packet delivered whole", Header{Flags: HdrFlagNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 66}, false, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newRxHarness(t, 64, feat, 1500)
			want := frameOf(20000, 3)
			if tt.badIPCsum {
				want[14+10] ^= 0xff // the header checksum field
			}
			h.send(tt.hdr, want)
			h.poll()
			if len(h.got) != 1 {
				t.Fatalf("delivered %d packets, want 1 (stats %+v)", len(h.got), h.c.snapshot())
			}
			if h.got[0].RXChecksumValidated != tt.validated {
				t.Fatalf("RXChecksumValidated = %v, want %v", h.got[0].RXChecksumValidated, tt.validated)
			}
			if got := h.c.snapshot().RxGSOPackets == 1; got != tt.gso {
				t.Fatalf("counted as GSO %v, want %v", got, tt.gso)
			}
			if !bytes.Equal(pktBytes(h.got[0]), want) {
				t.Fatal("frame differs")
			}
			h.release()
		})
	}
}

// TestRxHostileDevice feeds used entries a broken or malicious device could
// write. Each must be dropped and counted, every page recycled, the ring
// refilled, and the next good packet delivered.
func TestRxHostileDevice(t *testing.T) {
	mrg := virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestCsum
	big := virtio.FeatureVersion1 | FeatureGuestCsum | FeatureGuestTSO4
	for _, tt := range []struct {
		name     string
		features uint64
		device   func(h *rxHarness)
		counter  func(s Stats) uint64
	}{
		{
			"num_buffers of zero is dropped and counted", mrg,
			func(h *rxHarness) { h.sendRaw(Header{NumBuffers: 0}, 100, 100) },
			func(s Stats) uint64 { return s.RxDropNumBuffers },
		},
		{
			"num_buffers larger than in flight is dropped and counted", mrg,
			func(h *rxHarness) { h.sendRaw(Header{NumBuffers: 300}, 100, 100) },
			func(s Stats) uint64 { return s.RxDropNumBuffers },
		},
		{
			"length shorter than the header is dropped and counted", mrg,
			func(h *rxHarness) { h.sendRaw(Header{NumBuffers: 1}, 100, 5) },
			func(s Stats) uint64 { return s.RxDropShort },
		},
		{
			"zero length is dropped and counted", big,
			func(h *rxHarness) { h.sendRaw(Header{}, 100, 0) },
			func(s Stats) uint64 { return s.RxDropShort },
		},
		{
			"frame shorter than Ethernet is dropped and counted", mrg,
			func(h *rxHarness) { h.sendRaw(Header{NumBuffers: 1}, 100, 12+13) },
			func(s Stats) uint64 { return s.RxDropRunt },
		},
		{
			"truncated chain (fewer used than num_buffers) is dropped and counted", mrg,
			func(h *rxHarness) {
				head, _, _ := h.q.takeAvail()
				h.writeHeader(head, Header{NumBuffers: 3})
				h.q.pushUsed(uint32(head), 4096)
				head2, _, _ := h.q.takeAvail()
				h.q.pushUsed(uint32(head2), 4096)
				h.poll()
				// The missing buffer comes late, holding bytes of the
				// sender's choosing shaped as a packet whose checksum
				// need not be checked: it is the rest of the dropped
				// packet, not a packet.
				h.sendForged(Header{NumBuffers: 1, Flags: HdrFlagDataValid})
			},
			func(s Stats) uint64 { return s.RxDropTruncated * s.RxRestSkipped },
		},
		{
			"bad buffer in the middle of a packet drops the rest too", mrg,
			func(h *rxHarness) {
				head, _, _ := h.q.takeAvail()
				h.writeHeader(head, Header{NumBuffers: 3})
				h.q.pushUsed(uint32(head), 4096)
				head2, _, _ := h.q.takeAvail()
				h.q.pushUsed(uint32(head2), 9999) // beyond the page
				h.sendForged(Header{NumBuffers: 1, Flags: HdrFlagDataValid})
			},
			func(s Stats) uint64 { return s.RxDropBadLength * s.RxRestSkipped },
		},
		{
			"length beyond the posted page is dropped and counted", mrg,
			func(h *rxHarness) { h.sendRaw(Header{NumBuffers: 1}, 100, 5000) },
			func(s Stats) uint64 { return s.RxDropBadLength },
		},
		{
			"bad length in the middle of a packet drops the packet", mrg,
			func(h *rxHarness) {
				head, _, _ := h.q.takeAvail()
				h.writeHeader(head, Header{NumBuffers: 2})
				h.q.pushUsed(uint32(head), 4096)
				head2, _, _ := h.q.takeAvail()
				h.q.pushUsed(uint32(head2), 9999)
			},
			func(s Stats) uint64 { return s.RxDropBadLength },
		},
		{
			"id out of range is counted", mrg,
			func(h *rxHarness) { h.q.pushUsed(5000, 100) },
			func(s Stats) uint64 { return s.RxDropDeviceError },
		},
		{
			"id not in flight is counted", mrg,
			func(h *rxHarness) {
				head, _, _ := h.q.takeAvail()
				h.q.pushUsed(uint32(head), 0)   // dropped as short
				h.q.pushUsed(uint32(head), 100) // the same id again
			},
			func(s Stats) uint64 { return s.RxDropDeviceError },
		},
		{
			"unknown id in the middle of a packet drops the packet", mrg,
			func(h *rxHarness) {
				head, _, _ := h.q.takeAvail()
				h.writeHeader(head, Header{NumBuffers: 2})
				h.q.pushUsed(uint32(head), 4096)
				h.q.pushUsed(uint32(head), 4096)
			},
			func(s Stats) uint64 { return s.RxDropDeviceError },
		},
		{
			"GSO packet without GUEST_TSO is dropped and counted", mrg,
			func(h *rxHarness) { h.sendRaw(Header{NumBuffers: 1, GSOType: GSOTCPv4}, 100, 100) },
			func(s Stats) uint64 { return s.RxDropBadHeaderType },
		},
		{
			"NEEDS_CSUM naming a checksum beyond the frame is dropped and counted", mrg,
			func(h *rxHarness) {
				h.sendRaw(Header{NumBuffers: 1, Flags: HdrFlagNeedsCsum, CsumStart: 34, CsumOffset: 100}, 200, 12+100)
			},
			func(s Stats) uint64 { return s.RxDropBadCsum },
		},
		{
			"UDP GSO packet is dropped and counted", big,
			func(h *rxHarness) { h.sendRaw(Header{GSOType: GSOUDP}, 100, 100) },
			func(s Stats) uint64 { return s.RxDropBadHeaderType },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newRxHarness(t, 64, tt.features, 1500)
			tt.device(h)
			h.poll()
			if len(h.got) != 0 {
				t.Fatalf("delivered %d packets, want 0", len(h.got))
			}
			s := h.c.snapshot()
			if tt.counter(s) == 0 {
				t.Fatalf("drop not counted: %+v", s)
			}
			if s.RxPagesUp != 0 {
				t.Fatalf("%d pages went up from a dropped packet", s.RxPagesUp)
			}
			h.checkRingFull()
			// The driver keeps working.
			want := frameOf(3000, 9)
			if !h.send(Header{}, want) {
				t.Fatal("ring too small")
			}
			h.poll()
			if len(h.got) != 1 || !bytes.Equal(pktBytes(h.got[0]), want) {
				t.Fatalf("good packet after the hostile one not delivered intact (%d packets)", len(h.got))
			}
			h.checkRingFull()
			h.release()
		})
	}
}

// sendRaw takes one posted buffer, fills it with a header and pattern, and
// publishes it with length n (which may lie).
func (h *rxHarness) sendRaw(hdr Header, fill, n int) {
	head, chain, ok := h.q.takeAvail()
	if !ok {
		h.t.Fatal("no buffer posted")
	}
	data := make([]byte, fill)
	hdr.Encode(data[:h.r.hdrLen])
	h.write(chain, data)
	h.q.pushUsed(uint32(head), uint32(n))
}

// sendForged publishes one buffer holding hdr and a well-formed frame, as
// the rest of a packet whose first bytes a remote sender chose.
func (h *rxHarness) sendForged(hdr Header) {
	head, chain, ok := h.q.takeAvail()
	if !ok {
		h.t.Fatal("no buffer posted")
	}
	frame := frameOf(200, 7)
	data := make([]byte, h.r.hdrLen+len(frame))
	hdr.Encode(data[:h.r.hdrLen])
	copy(data[h.r.hdrLen:], frame)
	h.q.pushUsed(uint32(head), uint32(h.write(chain, data)))
}

func (h *rxHarness) writeHeader(head uint16, hdr Header) {
	b := h.q.inFlight()[head][0]
	dst, err := h.mem.Slice(b.Addr, h.r.hdrLen)
	if err != nil {
		h.t.Fatal(err)
	}
	hdr.Encode(dst)
}

// TestRxPageHandedUpIsNeverReposted holds a delivered multi-page packet
// while the device keeps receiving: its pages must not be posted again (the
// device would overwrite data netstack still holds), and its bytes must not
// change.
func TestRxPageHandedUpIsNeverReposted(t *testing.T) {
	h := newRxHarness(t, 32, virtio.FeatureVersion1|FeatureMrgRxbuf, 1500)
	want := frameOf(30000, 1)
	h.send(Header{}, want)
	h.poll()
	held := h.got[0]
	h.got = nil
	var held4 []uint64
	for _, s := range held.AsSlices()[1:] {
		p, err := h.mem.Phys(s)
		if err != nil {
			t.Fatal(err)
		}
		held4 = append(held4, p&^(pageSize-1))
	}
	for i := 0; i < 200; i++ {
		h.send(Header{}, frameOf(5000+i, byte(i)))
		h.poll()
		for _, b := range h.q.inFlight() {
			for _, p := range held4 {
				if b[0].Addr&^(pageSize-1) == p {
					t.Fatalf("page %#x of a held packet posted again", p)
				}
			}
		}
		h.release()
	}
	if !bytes.Equal(pktBytes(held), want) {
		t.Fatal("held packet changed while the ring kept receiving")
	}
	held.DecRef()
	h.checkRingFull()
}

func TestRxBufferSizing(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features uint64
		mtu      int
		want     []int
	}{
		{"mergeable: one page", virtio.FeatureVersion1 | FeatureMrgRxbuf | FeatureGuestTSO4 | FeatureGuestCsum, 1500, []int{4096}},
		{"GUEST_TSO without mergeable: 65562 bytes over 17 pages", virtio.FeatureVersion1 | FeatureGuestTSO4 | FeatureGuestCsum, 1500, append(repeat(4096, 16), 26)},
		{"legacy GUEST_TSO: 65560 bytes", FeatureGuestTSO6 | FeatureGuestCsum, 1500, append(repeat(4096, 16), 24)},
		{"MTU-sized: header, Ethernet, VLAN and MTU", virtio.FeatureVersion1, 1500, []int{12 + 18 + 1500}},
		{"jumbo MTU spans pages", virtio.FeatureVersion1, 9000, []int{4096, 4096, 12 + 18 + 9000 - 8192}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mem := &virtqueue.HeapDMA{AutoRegister: true}
			r := newRxRing(newRingDevice(t, mem, 256), mem, tt.features, tt.mtu, &counters{})
			if len(r.bufLens) != len(tt.want) {
				t.Fatalf("bufLens = %v, want %v", r.bufLens, tt.want)
			}
			for i := range tt.want {
				if r.bufLens[i] != tt.want[i] {
					t.Fatalf("bufLens = %v, want %v", r.bufLens, tt.want)
				}
			}
		})
	}
}

func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}
