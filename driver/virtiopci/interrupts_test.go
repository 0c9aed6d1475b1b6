package virtiopci_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/govirtio/govirtio/driver/virtio"
	"github.com/govirtio/govirtio/driver/virtiopci"
	"github.com/govirtio/govirtio/pci"
)

// waitCtx bounds a Wait that must return: a hang fails the test instead of
// stalling it. It is not a timing assertion.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustNotFire checks that irq has nothing pending: a Wait bounded by a
// short deadline must end with the deadline.
func mustNotFire(t *testing.T, what string, irq virtio.Interrupt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := irq.Wait(ctx); err == nil {
		t.Fatalf("%s fired", what)
	}
}

func TestInterruptsMSIX(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    layout
	}{
		{"modern", layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}},
		{"legacy", layout{deviceID: legacyDevice, legacyBAR: true, msixVectors: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256, 256)
			msi := &fakeMSI{}
			lines := &fakeLines{}
			fm, tr := open(t, tt.l, d, virtiopci.Options{}, virtiopci.Platform{MSI: msi, Lines: lines})
			fm.m.OnMSI(msi.deliver)
			if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
				t.Fatal(err)
			}
			queues, config, err := tr.Interrupts(2)
			if err != nil {
				t.Fatal(err)
			}
			if tr.InterruptMode() != "msix" || len(queues) != 2 {
				t.Fatalf("mode %q, %d queue interrupts", tr.InterruptMode(), len(queues))
			}
			if d.configVector != 0 || d.snapshot(0).vector != 1 || d.snapshot(1).vector != 2 {
				t.Fatalf("device vectors: config %#x queues %#x %#x", d.configVector, d.snapshot(0).vector, d.snapshot(1).vector)
			}
			for v := 0; v < 3; v++ {
				addr, data, masked := fm.msix.Entry(v)
				if addr != 0xFEE00000 || data != uint32(0x30+v) || masked {
					t.Fatalf("table entry %d = %#x %#x masked %v", v, addr, data, masked)
				}
			}
			ctl := fm.f.Peek16(fm.msiCap + 2)
			if ctl&0x8000 == 0 || ctl&0x4000 != 0 || fm.pdev.Command()&pci.CommandINTxDisable == 0 {
				t.Fatalf("MSI-X control %#x command %#x: want enabled, unmasked, INTx off", ctl, fm.pdev.Command())
			}

			// The legacy device configuration moved to 24 with MSI-X on.
			mac := make([]byte, 6)
			tr.ReadConfig(0, mac)
			if !bytes.Equal(mac, netConfig()[:6]) {
				t.Fatalf("MAC % x with MSI-X on", mac)
			}

			// Queue setup keeps the vector (modern writes it again before
			// queue_enable).
			desc, avail, used := legacyRing(256, 0x100000)
			if err := tr.SetupQueue(1, 256, desc, avail, used); err != nil {
				t.Fatal(err)
			}
			if d.snapshot(1).vector != 2 {
				t.Fatalf("queue 1 vector %#x after setup", d.snapshot(1).vector)
			}

			if !fm.msix.Fire(2) {
				t.Fatal("vector 2 not delivered")
			}
			if err := queues[1].Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			mustNotFire(t, "queue 0", queues[0])
			fm.msix.Fire(0)
			if err := config.Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// legacyRing returns the legacy contiguous layout of a size-entry queue at
// desc (also valid for the modern layout).
func legacyRing(size int, desc uint64) (uint64, uint64, uint64) {
	avail := desc + 16*uint64(size)
	used := (avail + 6 + 2*uint64(size) + 4095) &^ 4095
	return desc, avail, used
}

func TestInterruptsFallBackToINTx(t *testing.T) {
	tests := []struct {
		name         string
		l            layout
		o            virtiopci.Options
		maxVectors   int
		failAfter    int
		noMSI        bool
		wantFallback uint64
	}{
		{name: "modern device rejects a queue vector", l: layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}, maxVectors: 2, wantFallback: 1},
		{name: "legacy device rejects a queue vector", l: layout{deviceID: legacyDevice, legacyBAR: true, msixVectors: 3}, maxVectors: 1, wantFallback: 1},
		{name: "legacy device rejects the config vector", l: layout{deviceID: legacyDevice, legacyBAR: true, msixVectors: 3}, maxVectors: 0, wantFallback: 1},
		{name: "MSI-X table of one entry", l: layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 1}, maxVectors: 64, wantFallback: 1},
		{name: "platform out of vectors", l: layout{deviceID: legacyDevice, legacyBAR: true, msixVectors: 3}, maxVectors: 64, failAfter: 2, wantFallback: 1},
		{name: "no MSI-X capability", l: legacyOnly, maxVectors: 64},
		{name: "platform without MSI", l: layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}, maxVectors: 64, noMSI: true},
		{name: "MSI-X turned off by option", l: layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}, o: virtiopci.Options{NoMSIX: true}, maxVectors: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256, 256)
			d.maxVectors = tt.maxVectors
			lines := &fakeLines{}
			p := virtiopci.Platform{Lines: lines}
			if !tt.noMSI {
				p.MSI = &fakeMSI{failAfter: tt.failAfter}
			}
			fm, tr := open(t, tt.l, d, tt.o, p)
			if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
				t.Fatal(err)
			}
			queues, config, err := tr.Interrupts(2)
			if err != nil {
				t.Fatal(err)
			}
			if tr.InterruptMode() != "intx" || tr.Stats().MSIXFallbacks != tt.wantFallback {
				t.Fatalf("mode %q, fallbacks %d", tr.InterruptMode(), tr.Stats().MSIXFallbacks)
			}
			if fm.msix != nil && fm.f.Peek16(fm.msiCap+2)&0x8000 != 0 {
				t.Fatal("MSI-X left enabled")
			}
			if fm.pdev.Command()&pci.CommandINTxDisable != 0 {
				t.Fatal("INTx left disabled")
			}
			if d.configVector != 0xFFFF || d.snapshot(0).vector != 0xFFFF || d.snapshot(1).vector != 0xFFFF {
				t.Fatalf("vectors left assigned: config %#x queues %#x %#x", d.configVector, d.snapshot(0).vector, d.snapshot(1).vector)
			}
			// The legacy device configuration is back at 20.
			mac := make([]byte, 6)
			tr.ReadConfig(0, mac)
			if !bytes.Equal(mac, netConfig()[:6]) {
				t.Fatalf("MAC % x after fallback", mac)
			}
			d.mu.Lock()
			d.isr = 1
			d.mu.Unlock()
			lines.line(testLine).fire()
			if err := queues[0].Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			if err := queues[1].Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			mustNotFire(t, "config", config)
		})
	}
}

func TestInterruptsMSIXSharedQueueVector(t *testing.T) {
	d := newFakeDev(v1, netConfig(), 256, 256, 64)
	msi := &fakeMSI{}
	l := layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 2}
	fm, tr := open(t, l, d, virtiopci.Options{}, virtiopci.Platform{MSI: msi, Lines: &fakeLines{}})
	fm.m.OnMSI(msi.deliver)
	queues, config, err := tr.Interrupts(3)
	if err != nil {
		t.Fatal(err)
	}
	if tr.InterruptMode() != "msix-shared" || len(msi.irqs) != 2 {
		t.Fatalf("mode %q with %d vectors allocated", tr.InterruptMode(), len(msi.irqs))
	}
	for q := 0; q < 3; q++ {
		if v := d.snapshot(q).vector; v != 1 {
			t.Fatalf("queue %d vector %#x, want the shared vector 1", q, v)
		}
	}
	fm.msix.Fire(1)
	for q, irq := range queues {
		if err := irq.Wait(waitCtx(t)); err != nil {
			t.Fatalf("queue %d: %v", q, err)
		}
	}
	mustNotFire(t, "config on the queue vector", config)
	fm.msix.Fire(0)
	if err := config.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestInterruptsSurviveReset(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    layout
	}{
		{"modern", layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}},
		{"legacy", layout{deviceID: legacyDevice, legacyBAR: true, msixVectors: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256, 256)
			msi := &fakeMSI{}
			fm, tr := open(t, tt.l, d, virtiopci.Options{}, virtiopci.Platform{MSI: msi})
			fm.m.OnMSI(msi.deliver)
			// Interrupts first, then the reset inside Negotiate.
			queues, config, err := tr.Interrupts(2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
				t.Fatal(err)
			}
			if d.configVector != 0xFFFF {
				t.Fatal("fake device kept its vectors over reset")
			}
			desc, avail, used := legacyRing(256, 0x100000)
			if err := tr.SetupQueue(1, 256, desc, avail, used); err != nil {
				t.Fatal(err)
			}
			if d.configVector != 0 || d.snapshot(1).vector != 2 || tr.InterruptMode() != "msix" {
				t.Fatalf("after reset and setup: config vector %#x, queue 1 vector %#x, mode %q", d.configVector, d.snapshot(1).vector, tr.InterruptMode())
			}
			fm.msix.Fire(2)
			if err := queues[1].Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
			fm.msix.Fire(0)
			if err := config.Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInterruptsAgainReuseVectors(t *testing.T) {
	d := newFakeDev(v1, netConfig(), 256, 256)
	msi := &fakeMSI{}
	l := layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}
	_, tr := open(t, l, d, virtiopci.Options{}, virtiopci.Platform{MSI: msi})
	for round := 0; round < 3; round++ {
		if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tr.Interrupts(2); err != nil {
			t.Fatal(err)
		}
		if d.configVector != 0 || d.snapshot(1).vector != 2 {
			t.Fatalf("round %d: vectors not programmed again after reset", round)
		}
	}
	if len(msi.irqs) != 3 {
		t.Fatalf("%d vectors allocated over three rounds, want 3", len(msi.irqs))
	}
}

func TestInterruptsNone(t *testing.T) {
	tests := []struct {
		name string
		l    layout
		p    virtiopci.Platform
	}{
		{"no MSI-X and no line interrupts", legacyOnly, virtiopci.Platform{MSI: &fakeMSI{}}},
		{"no interrupt pin", layout{deviceID: legacyDevice, legacyBAR: true, pin: 0xFF}, virtiopci.Platform{Lines: &fakeLines{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256)
			fm, tr := open(t, tt.l, d, virtiopci.Options{}, tt.p)
			if tt.l.pin == 0xFF {
				fm.pdev.InterruptPin = 0
			}
			if _, _, err := tr.Interrupts(1); !errors.Is(err, virtiopci.ErrNoInterrupt) {
				t.Fatalf("err = %v, want ErrNoInterrupt", err)
			}
		})
	}
}

func TestINTxReadsISRAndDemultiplexes(t *testing.T) {
	d := newFakeDev(v1, netConfig(), 256, 256)
	lines := &fakeLines{}
	_, tr := open(t, modernOnly, d, virtiopci.Options{}, virtiopci.Platform{Lines: lines})
	queues, config, err := tr.Interrupts(2)
	if err != nil {
		t.Fatal(err)
	}
	line := lines.line(testLine)
	setISR := func(v uint8) {
		d.mu.Lock()
		d.isr = v
		d.mu.Unlock()
	}

	// A configuration change only.
	setISR(2)
	line.fire()
	if err := config.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if d.isr != 0 {
		t.Fatal("ISR not read (the device was not acknowledged)")
	}
	mustNotFire(t, "queue 0 on a config interrupt", queues[0])

	// A spurious interrupt (shared line, ISR 0) wakes nobody and is counted.
	line.fire()
	mustNotFire(t, "queue 1 on a spurious interrupt", queues[1])
	if st := tr.Stats(); st.SpuriousLine != 1 || st.LineInterrupts != 2 {
		t.Fatalf("line interrupts %d, spurious %d", st.LineInterrupts, st.SpuriousLine)
	}

	// Both kinds at once, every waiter blocked before the line fires.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, irq := range []virtio.Interrupt{queues[0], queues[1], config} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- irq.Wait(waitCtx(t))
		}()
	}
	setISR(3)
	line.fire()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestINTxWaiterCancelledHandsTheLineOver(t *testing.T) {
	d := newFakeDev(v1, netConfig(), 256)
	lines := &fakeLines{}
	_, tr := open(t, modernOnly, d, virtiopci.Options{}, virtiopci.Platform{Lines: lines})
	queues, config, err := tr.Interrupts(1)
	if err != nil {
		t.Fatal(err)
	}
	// config becomes the line waiter and gives up; queue 0, waiting
	// behind it, must take the line over and see the interrupt.
	ctx, cancel := context.WithCancel(context.Background())
	cfgDone := make(chan error, 1)
	go func() { cfgDone <- config.Wait(ctx) }()
	qDone := make(chan error, 1)
	go func() { qDone <- queues[0].Wait(waitCtx(t)) }()
	cancel()
	if err := <-cfgDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("config Wait = %v", err)
	}
	d.mu.Lock()
	d.isr = 1
	d.mu.Unlock()
	lines.line(testLine).fire()
	if err := <-qDone; err != nil {
		t.Fatal(err)
	}
}

func TestInterruptsAfterQueueSetup(t *testing.T) {
	for _, tt := range []struct {
		name   string
		l      layout
		refuse bool // modern: an enabled queue's vector cannot be written
	}{
		{"modern refuses", layout{deviceID: netDevice, modernCaps: true, multiplier: 4, msixVectors: 3}, true},
		{"legacy still programs vectors", layout{deviceID: legacyDevice, legacyBAR: true, msixVectors: 3}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDev(v1, netConfig(), 256, 256)
			msi := &fakeMSI{}
			fm, tr := open(t, tt.l, d, virtiopci.Options{}, virtiopci.Platform{MSI: msi})
			fm.m.OnMSI(msi.deliver)
			if _, err := virtio.Negotiate(tr, v1, ^uint64(0)); err != nil {
				t.Fatal(err)
			}
			for q := 0; q < 2; q++ {
				desc, avail, used := legacyRing(256, 0x100000+uint64(q)<<16)
				if err := tr.SetupQueue(q, 256, desc, avail, used); err != nil {
					t.Fatal(err)
				}
			}
			queues, _, err := tr.Interrupts(2)
			if tt.refuse {
				if !errors.Is(err, virtiopci.ErrBadQueue) {
					t.Fatalf("Interrupts after queue_enable: %v, want ErrBadQueue", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.snapshot(0).vector != 1 || d.snapshot(1).vector != 2 {
				t.Fatalf("queue vectors %#x %#x", d.snapshot(0).vector, d.snapshot(1).vector)
			}
			fm.msix.Fire(1)
			if err := queues[0].Wait(waitCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// rearmLine is a line interrupt that stays masked until Rearm, and checks
// that the device was acknowledged (ISR read) before it is unmasked.
type rearmLine struct {
	*chanIRQ
	// d is the device behind the line.
	d *fakeDev
	// rearms counts Rearm calls; early counts those made while the ISR
	// still held bits (the line would fire again at once).
	rearms, early int
}

func (r *rearmLine) Rearm() error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.rearms++
	if r.d.isr != 0 {
		r.early++
	}
	return nil
}

// rearmLines hands out one rearmLine.
type rearmLines struct{ l *rearmLine }

func (r rearmLines) LineInterrupt(uint8) (virtio.Interrupt, error) { return r.l, nil }

func TestINTxRearmsTheLineAfterReadingISR(t *testing.T) {
	d := newFakeDev(v1, netConfig(), 256)
	line := &rearmLine{chanIRQ: newChanIRQ(), d: d}
	_, tr := open(t, legacyOnly, d, virtiopci.Options{}, virtiopci.Platform{Lines: rearmLines{line}})
	queues, _, err := tr.Interrupts(1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		d.mu.Lock()
		d.isr = 1
		d.mu.Unlock()
		line.fire()
		if err := queues[0].Wait(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if line.rearms != 3 || line.early != 0 {
		t.Fatalf("rearmed %d times, %d before the ISR was read", line.rearms, line.early)
	}
}
