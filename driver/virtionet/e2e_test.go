package virtionet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/devmodel"
	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/virtqueue"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Feature groups of the end-to-end matrix.
const (
	baseFeatures    = FeatureMAC | FeatureStatus | FeatureMTU | FeatureCtrlVQ | FeatureCtrlRx | FeatureGuestAnnounce
	offloadFeatures = FeatureCsum | FeatureGuestCsum | FeatureHostTSO4 | FeatureHostTSO6 | FeatureHostECN |
		FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN
)

// e2eConfig is one point of the feature matrix.
type e2eConfig struct {
	legacy   bool // legacy device (32 feature bits, contiguous rings)
	mrg      bool // MRG_RXBUF offered
	offloads bool // checksum, TSO and ECN offloads offered both ways
	eventIdx bool // EVENT_IDX offered
	indirect bool // INDIRECT_DESC offered
	packed   bool // RING_PACKED offered (modern only)
	queue    int  // queue size; 0 is the device model's default
}

func (c e2eConfig) String() string {
	on := func(b bool, s string) string {
		if b {
			return s
		}
		return "no" + s
	}
	kind := "modern"
	if c.legacy {
		kind = "legacy"
	}
	ring := "split"
	if c.packed {
		ring = "packed"
	}
	return fmt.Sprintf("%s/%s/%s/%s/%s/%s", kind, ring, on(c.mrg, "mrg"), on(c.offloads, "offload"), on(c.eventIdx, "eventidx"), on(c.indirect, "indirect"))
}

func (c e2eConfig) features() uint64 {
	f := baseFeatures
	if c.mrg {
		f |= FeatureMrgRxbuf
	}
	if c.offloads {
		f |= offloadFeatures
	}
	if c.eventIdx {
		f |= virtio.FeatureEventIdx
	}
	if c.indirect {
		f |= virtio.FeatureIndirectDesc
	}
	if c.packed {
		f |= virtio.FeatureRingPacked
	}
	if c.legacy {
		f |= virtio.FeatureAnyLayout
	}
	return f
}

// side is one machine: a device model, our driver on it, a gVisor stack.
type side struct {
	dev   *devmodel.Net // the device model
	drv   *Device       // our driver on it
	stack *stack.Stack  // the gVisor stack on the driver
	addr  tcpip.Address // the stack's IPv4 address
}

func newSide(t testing.TB, mem *virtqueue.HeapDMA, c e2eConfig, n byte) *side {
	t.Helper()
	dev, err := devmodel.New(devmodel.Config{
		Mem:       mem,
		Legacy:    c.legacy,
		Features:  c.features(),
		MAC:       [6]byte{0x52, 0x54, 0, 0x12, 0x34, n},
		MTU:       1500,
		RxBacklog: 4096,
		QueueSize: c.queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := Open(dev, mem, Options{})
	if err != nil {
		dev.Close()
		t.Fatalf("Open: %v", err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(1, drv); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	addr := tcpip.AddrFrom4([4]byte{10, 0, 0, n})
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr.WithPrefix()}, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	sd := &side{dev: dev, drv: drv, stack: s, addr: addr}
	t.Cleanup(sd.close)
	return sd
}

func (s *side) close() {
	s.drv.Close() // stops the driver's goroutines, which stack.Wait waits for
	s.stack.Close()
	s.stack.Wait()
	s.dev.Close()
}

func newPair(t testing.TB, c e2eConfig) (a, b *side) {
	mem := &virtqueue.HeapDMA{AutoRegister: true}
	a = newSide(t, mem, c, 1)
	b = newSide(t, mem, c, 2)
	devmodel.Connect(a.dev, b.dev)
	return a, b
}

// transfer sends size pseudo-random bytes from one side to the other over
// TCP and checks their SHA-256.
func transfer(t testing.TB, from, to *side, size int64, port uint16) {
	t.Helper()
	transferWrites(t, from, to, size, port, 0)
}

// transferWrites is transfer with writes of writeSize bytes (0: large).
func transferWrites(t testing.TB, from, to *side, size int64, port uint16, writeSize int) {
	t.Helper()
	ln, err := gonet.ListenTCP(to.stack, tcpip.FullAddress{NIC: 1, Addr: to.addr, Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		done <- r
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, from.stack, tcpip.FullAddress{NIC: 1, Addr: to.addr, Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	deadline, _ := ctx.Deadline()
	c.SetWriteDeadline(deadline) // a stalled transfer fails instead of hanging
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{byte(port)}), size), h)
	if writeSize > 0 {
		// Many small writes: netstack links one view per write into
		// a TSO segment.
		buf := make([]byte, writeSize)
		for {
			n, rerr := src.Read(buf)
			if _, err := c.Write(buf[:n]); err != nil {
				t.Fatalf("send: %v", err)
			}
			if rerr == io.EOF {
				break
			}
		}
	} else if _, err := io.Copy(c, src); err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Close()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("receive: %v", r.err)
		}
		if r.n != size || !bytes.Equal(r.sum[:], h.Sum(nil)) {
			t.Fatalf("received %d bytes sha256 %x, sent %d bytes sha256 %x", r.n, r.sum, size, h.Sum(nil))
		}
	case <-ctx.Done():
		t.Fatalf("transfer of %d bytes timed out; sender stats %+v receiver stats %+v", size, from.drv.Stats(), to.drv.Stats())
	}
}

// httpGet serves one page from b and fetches it from a.
func httpGet(t testing.TB, a, b *side) {
	t.Helper()
	ln, err := gonet.ListenTCP(b.stack, tcpip.FullAddress{NIC: 1, Addr: b.addr, Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("govirtio "), 20000)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, a.stack, tcpip.FullAddress{NIC: 1, Addr: b.addr, Port: 80}, ipv4.ProtocolNumber)
		}},
	}
	resp, err := client.Get("http://10.0.0.2/")
	if err != nil {
		t.Fatalf("GET: %v\nclient driver %+v\nclient device %+v\nserver driver %+v\nserver device %+v\nserver stack %s", err, a.drv.Stats(), a.dev.Stats(), b.drv.Stats(), b.dev.Stats(), stackStats(b.stack))
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET: status %d, %d bytes, err %v", resp.StatusCode, len(got), err)
	}
}

// checkClean fails on any driver drop or device error counted during the
// test.
func checkClean(t testing.TB, sides ...*side) {
	t.Helper()
	for i, s := range sides {
		st := s.drv.Stats()
		if st.RxDrops() != 0 || st.TxDrops() != 0 || st.TxDeviceErrors != 0 {
			t.Errorf("side %d: drops in %+v", i, st)
		}
	}
}

// TestEndToEnd runs an HTTP GET and a TCP transfer each way between two
// gVisor stacks over two device models wired back to back, for every
// combination of legacy/modern, MRG_RXBUF, offloads, EVENT_IDX and
// INDIRECT_DESC (32 in all), and again with packed rings (RING_PACKED
// offered, modern devices only: 16 more), checking the SHA-256 of what
// arrives. With
// offloads (TSO, 64 KiB packets) every combination moves 64 MiB each way;
// without them (one packet per MTU, about 16 times as many packets) 16 MiB
// each way. That is about 10 s on two shared cores. With -short every
// transfer is 256 KiB.
func TestEndToEnd(t *testing.T) {
	for _, packed := range []bool{false, true} {
		for _, legacy := range []bool{false, true} {
			if packed && legacy {
				continue // a legacy device has split rings only
			}
			testEndToEndMatrix(t, legacy, packed)
		}
	}
}

// testEndToEndMatrix runs TestEndToEnd's combinations for one device kind
// and ring format.
func testEndToEndMatrix(t *testing.T, legacy, packed bool) {
	{
		for _, mrg := range []bool{true, false} {
			for _, off := range []bool{true, false} {
				for _, ev := range []bool{true, false} {
					for _, ind := range []bool{true, false} {
						c := e2eConfig{legacy: legacy, mrg: mrg, offloads: off, eventIdx: ev, indirect: ind, packed: packed}
						size := int64(64 << 20)
						switch {
						case testing.Short():
							size = 256 << 10
						case !off:
							size = 16 << 20
						}
						t.Run(c.String(), func(t *testing.T) {
							a, b := newPair(t, c)
							if got, want := a.drv.HeaderLen(), headerLen(a.drv.Features()); got != want {
								t.Fatalf("header length %d, want %d", got, want)
							}
							if got := a.drv.Features()&virtio.FeatureRingPacked != 0; got != packed {
								t.Fatalf("RING_PACKED negotiated %v, offered %v", got, packed)
							}
							httpGet(t, a, b)
							transfer(t, a, b, size, 5001)
							transfer(t, b, a, size, 5002)
							checkClean(t, a, b)
							if off {
								// TSO must really be used: large segments
								// leave as GSO packets and arrive whole.
								for i, s := range []*side{a, b} {
									if st := s.drv.Stats(); st.TxGSOPackets == 0 || st.RxGSOPackets == 0 {
										t.Errorf("side %d: offloads negotiated but TxGSOPackets %d, RxGSOPackets %d", i, st.TxGSOPackets, st.RxGSOPackets)
									}
								}
							}
							if testing.Verbose() {
								t.Logf("side a: %+v", a.drv.Stats())
								t.Logf("side b: %+v", b.drv.Stats())
							}
						})
					}
				}
			}
		}
	}
}

// stackStats summarizes netstack's receive-side error counters.
func stackStats(s *stack.Stack) string {
	st := s.Stats()
	return fmt.Sprintf("ip received %d malformed %d; tcp valid %d invalid %d checksum errors %d; dropped %d",
		st.IP.PacketsReceived.Value(), st.IP.MalformedPacketsReceived.Value(),
		st.TCP.ValidSegmentsReceived.Value(), st.TCP.InvalidSegmentsReceived.Value(), st.TCP.ChecksumErrors.Value(),
		st.DroppedPackets.Value())
}

// TSO segments built from many small writes carry one view per write: on
// a small queue their chains are longer than the queue, and they go out
// through bounce buffers instead of being dropped (which left TCP to
// recover by retransmission timeouts).
func TestEndToEndSmallWritesOnASmallQueue(t *testing.T) {
	for _, packed := range []bool{false, true} {
		c := e2eConfig{mrg: true, offloads: true, eventIdx: true, indirect: true, queue: 16, packed: packed}
		t.Run(c.String(), func(t *testing.T) {
			a, b := newPair(t, c)
			transferWrites(t, a, b, 1<<20, 7000, 64)
			s := a.drv.Stats()
			if s.TxDropTooManySegs != 0 || s.TxBounced == 0 {
				t.Errorf("sender: %d packets dropped as too long, %d bounced; want none dropped, some bounced", s.TxDropTooManySegs, s.TxBounced)
			}
			if to := a.stack.Stats().TCP.Timeouts.Value(); to != 0 {
				t.Errorf("%d retransmission timeouts", to)
			}
		})
	}
}

// TestEndToEndHostileDevice lies to the receiving driver during a
// transfer, over split and packed rings: two packets claim num_buffers 0,
// two used lengths exceed the posted page (few, because each costs TCP a
// retransmission timeout), two transmit completions carry an id out of
// range. The driver must count and drop them and keep going; TCP
// retransmits, and the data still arrives intact.
func TestEndToEndHostileDevice(t *testing.T) {
	for _, packed := range []bool{false, true} {
		c := e2eConfig{mrg: true, offloads: true, eventIdx: true, indirect: true, packed: packed}
		t.Run(c.String(), func(t *testing.T) { testEndToEndHostileDevice(t, c) })
	}
}

func testEndToEndHostileDevice(t *testing.T, c e2eConfig) {
	a, b := newPair(t, c)
	var nPkts, nLens, nIDs atomic.Uint64
	b.dev.SetHostile(&devmodel.Hostile{
		// Two transmit completions name an id out of range: each is
		// counted and its chain stays in flight (leaked until reset).
		UsedID: func(q int, id uint32) uint32 {
			if q == txQueueIndex {
				if k := nIDs.Add(1); k == 20 || k == 60 {
					return 0xffff
				}
			}
			return id
		},
		NumBuffers: func(n uint16) uint16 {
			if k := nPkts.Add(1); k == 5 || k == 40 {
				return 0
			}
			return n
		},
		UsedLen: func(q int, length uint32) uint32 {
			if q != rxQueueIndex {
				return length
			}
			if k := nLens.Add(1); k == 30 || k == 300 {
				return length + 5000
			}
			return length
		},
	})
	check := checkFrames(b.drv)
	size := int64(4 << 20)
	transfer(t, a, b, size, 5003)
	b.dev.SetHostile(nil)
	// The lies are dropped, never passed on: every frame netstack got is
	// one a device may deliver (a well-formed IPv4 packet whose length is
	// its own, or ARP). A frame built from the wrong buffers, or with a
	// stretched length, fails this even where TCP would drop it silently.
	if n, bad := check.delivered.Load(), check.bad.Load(); n == 0 || bad != 0 {
		t.Fatalf("%d of %d frames delivered to netstack are corrupted; the first: %v", bad, n, check.first.Load())
	}
	s := b.drv.Stats()
	if s.RxDropNumBuffers == 0 || s.RxDropBadLength == 0 || s.TxDeviceErrors != 2 {
		t.Fatalf("hostile entries not counted: %+v", s)
	}
	if s.RxRingInFlight < s.RxRingSize/2 {
		t.Fatalf("RX ring not refilled: %d of %d in flight", s.RxRingInFlight, s.RxRingSize)
	}
	// The driver still works without the lies.
	transfer(t, b, a, size, 5004)
}

// frameChecker stands between a driver and netstack and counts the frames
// delivered that no device should deliver.
type frameChecker struct {
	stack.NetworkDispatcher               // netstack's dispatcher
	delivered               atomic.Uint64 // frames delivered
	bad                     atomic.Uint64 // of them, corrupted
	first                   atomic.Value  // why the first corrupted one is (a string)
}

// checkFrames puts a frameChecker in front of d's netstack dispatcher.
func checkFrames(d *Device) *frameChecker {
	c := &frameChecker{NetworkDispatcher: d.dispatcher.Load().d}
	d.dispatcher.Store(&dispatcherBox{d: c})
	return c
}

func (c *frameChecker) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	c.delivered.Add(1)
	if why := corruptFrame(proto, pkt); why != "" {
		c.bad.Add(1)
		c.first.CompareAndSwap(nil, why)
	}
	c.NetworkDispatcher.DeliverNetworkPacket(proto, pkt)
}

// corruptFrame says what is wrong with a delivered frame, or "": an IPv4
// packet must be valid, with a correct header checksum (which no offload
// vouches for) and a total length that is the frame's, Ethernet padding
// of a minimum-sized frame aside; ARP passes; nothing else is sent here.
func corruptFrame(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) string {
	buf := pkt.ToBuffer()
	frame := buf.Flatten()
	buf.Release()
	switch proto {
	case header.ARPProtocolNumber:
		return ""
	case header.IPv4ProtocolNumber:
	default:
		return fmt.Sprintf("ethertype %#x", proto)
	}
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize {
		return fmt.Sprintf("IPv4 frame of %d bytes", len(frame))
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if !ip.IsValid(len(ip)) {
		return fmt.Sprintf("invalid IPv4 header % x", frame[header.EthernetMinimumSize:header.EthernetMinimumSize+header.IPv4MinimumSize])
	}
	if !ip.IsChecksumValid() {
		return "IPv4 header checksum"
	}
	if tl := int(ip.TotalLength()); tl != len(ip) && !(len(frame) == 60 && tl < len(ip)) {
		return fmt.Sprintf("IPv4 total length %d in %d bytes", tl, len(ip))
	}
	return ""
}

// BenchmarkEndToEndTCP measures TCP throughput between two gVisor stacks
// over two device models wired back to back (one direction, 16 MiB per
// iteration), for the main feature combinations. The device model and both
// stacks share the machine's cores, so this is the driver's cost plus
// everything around it, not a line rate.
func BenchmarkEndToEndTCP(b *testing.B) {
	for _, c := range []e2eConfig{
		{mrg: true, offloads: true, eventIdx: true, indirect: true},
		{mrg: true, offloads: true, eventIdx: true, indirect: true, packed: true},
		{mrg: false, offloads: true, eventIdx: true, indirect: true},
		{mrg: true, offloads: false, eventIdx: true, indirect: true},
		{legacy: true, mrg: true, offloads: true},
	} {
		b.Run(c.String(), func(b *testing.B) {
			a, z := newPair(b, c)
			const size = 16 << 20
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				transfer(b, a, z, size, uint16(6000+i%1000))
			}
		})
	}
}

// TestEndToEndRecoversFromDeviceErrors breaks the receiving side's device
// in the middle of a TCP transfer, in each way that leaves its rings
// untrustworthy, and checks that the driver resets it and the transfer
// completes intact over the same connection.
func TestEndToEndRecoversFromDeviceErrors(t *testing.T) {
	// 4 MiB even with -short: the break must land in the middle.
	size := int64(4 << 20)
	// badUsedID returns a hook that replaces the id of queue q's used
	// entry number at with one out of range.
	badUsedID := func(q int, at uint64) func(int, uint32) uint32 {
		var k atomic.Uint64
		return func(qq int, id uint32) uint32 {
			if qq == q && k.Add(1) == at {
				return 60000
			}
			return id
		}
	}
	for _, tc := range []struct {
		name  string
		queue int // the queue whose violation the sender or receiver sees
		// breakIt breaks a (sender) or b (receiver) once traffic flows.
		breakIt func(t *testing.T, a, b *side)
	}{
		{"DEVICE_NEEDS_RESET on the receiver", -1, func(t *testing.T, a, b *side) { b.dev.Break() }},
		{"DEVICE_NEEDS_RESET on the sender", -1, func(t *testing.T, a, b *side) { a.dev.Break() }},
		{"malformed TX chain (InjectTxFault)", -1, func(t *testing.T, a, b *side) {
			if err := a.drv.InjectTxFault(); err != nil {
				t.Error(err)
			}
		}},
		{"RX used id out of range", rxQueueIndex, func(t *testing.T, a, b *side) {
			b.dev.SetHostile(&devmodel.Hostile{UsedID: badUsedID(rxQueueIndex, 5)})
		}},
		{"TX used id out of range", txQueueIndex, func(t *testing.T, a, b *side) {
			a.dev.SetHostile(&devmodel.Hostile{UsedID: badUsedID(txQueueIndex, 5)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, e2eConfig{mrg: true, offloads: true, eventIdx: true, indirect: true})
			// TCP as package network sets it up: SACK on, RACK-TLP off.
			// With RACK, the recovery from the burst of losses a reset
			// makes stalled in SACK recovery (seconds of 200 ms timeouts
			// with cwnd 5 and ssthresh 2) in 3 runs of 30.
			for _, s := range []*stack.Stack{a.stack, b.stack} {
				sack := tcpip.TCPSACKEnabled(true)
				s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
				recovery := tcpip.TCPRecovery(0)
				s.SetTransportProtocolOption(tcp.ProtocolNumber, &recovery)
			}
			broken := make(chan uint64, 1)
			go func() {
				for b.drv.Stats().RxBytes < uint64(size/16) {
					time.Sleep(50 * time.Microsecond)
				}
				tc.breakIt(t, a, b)
				broken <- b.drv.Stats().RxBytes
			}()
			transfer(t, a, b, size, 5005)
			if at := <-broken; at >= uint64(size) {
				t.Fatalf("the device broke after the transfer (%d bytes received)", at)
			}
			a.dev.SetHostile(nil)
			b.dev.SetHostile(nil)
			sa, sb := a.drv.Stats(), b.drv.Stats()
			if got := sa.Recoveries + sb.Recoveries; got == 0 {
				t.Fatalf("no recovery: sender %+v receiver %+v", sa, sb)
			}
			if sa.RecoveryFailures+sb.RecoveryFailures != 0 {
				t.Fatalf("recovery failed: sender %+v receiver %+v", sa, sb)
			}
			if tc.queue < 0 && sa.NeedsReset+sb.NeedsReset == 0 {
				t.Errorf("DEVICE_NEEDS_RESET not counted")
			}
			// The link reads down while the device is reset, and up again.
			if sa.LinkChanges+sb.LinkChanges < 2 || !a.drv.LinkUp() || !b.drv.LinkUp() {
				t.Errorf("LinkChanges %d+%d, link up %v %v: want down and up around the reset", sa.LinkChanges, sb.LinkChanges, a.drv.LinkUp(), b.drv.LinkUp())
			}
			// The recovered device keeps working both ways.
			transfer(t, b, a, size/4, 5006)
		})
	}
}
