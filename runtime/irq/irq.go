package irq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/govirtio/govirtio/runtime/kernel"
)

// ErrNoVector reports that every MSI vector is taken.
var ErrNoVector = errors.New("irq: no free interrupt vector")

// msiAddressBase is the MSI address window (Intel SDM Vol. 3 §11.11.1).
const msiAddressBase = 0xfee00000

// Line is one interrupt vector owned by the program.
type Line struct {
	vector uint8           // the CPU vector
	gsi    int             // I/O APIC input for INTx lines, -1 for MSI
	fd     int             // the kernel's interrupt file
	f      *os.File        // fd, registered with the poller
	rc     syscall.RawConn // f's raw access, through which Wait parks
	seen   uint64          // the kernel's count of firings at the last Wait; owned by the waiter

	// The context of the last Wait and the AfterFunc that ends waits when
	// it is done: registered once per context, not per Wait, because a
	// driver waits with the same context for its whole life and an
	// AfterFunc costs an allocation and a lock in the parent context.
	// Owned by the waiter.
	ctx  context.Context
	stop func() bool
	// mu orders the AfterFunc's deadline against a change of context:
	// gen names the current context, and a function of an older one does
	// nothing.
	mu  sync.Mutex
	gen uint64
}

// AllocMSI takes a free vector for an MSI or MSI-X message.
func AllocMSI() (*Line, error) {
	for v := kernel.VectorMSIFirst; v <= kernel.VectorMSILast; v++ {
		l, err := open(fmt.Sprintf("/dev/irq/%d", v), uint8(v), -1)
		if errors.Is(err, syscall.EEXIST) {
			continue
		}
		return l, err
	}
	return nil, ErrNoVector
}

// INTx routes I/O APIC input gsi (a PCI INTx line: level-triggered, active
// low) to a vector and returns its Line. Rearm after each interrupt.
func INTx(gsi int) (*Line, error) {
	return open(fmt.Sprintf("/dev/intx/%d", gsi), 0, gsi)
}

// Level routes I/O APIC input gsi as a level-triggered, active-high line
// (a device on no bus, as virtio-mmio devices are on QEMU's microvm and
// Firecracker) to a vector and returns its Line. Rearm after each
// interrupt, once the device is acknowledged.
func Level(gsi int) (*Line, error) {
	return open(fmt.Sprintf("/dev/gsi/%d", gsi), 0, gsi)
}

func open(path string, vector uint8, gsi int) (*Line, error) {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("irq: open %s: %w", path, err)
	}
	if gsi >= 0 {
		vector = uint8(kernel.VectorGSIBase + gsi)
	}
	f := os.NewFile(uintptr(fd), path)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("irq: %s: %w", path, err)
	}
	return &Line{vector: vector, gsi: gsi, fd: fd, f: f, rc: rc}, nil
}

// Vector is the CPU interrupt vector of the line.
func (l *Line) Vector() uint8 { return l.vector }

// MSIMessage is the address and data a device writes to raise this line:
// fixed delivery, edge-triggered, to this CPU.
func (l *Line) MSIMessage() (addr uint64, data uint32) {
	id, _, _ := syscall.RawSyscall(kernel.SysAPICID, 0, 0, 0)
	return msiAddressBase | uint64(id&0xff)<<12, uint32(l.vector)
}

// Wait blocks until the line has fired since the previous Wait returned
// and reports how many times; an interrupt that arrived while nobody waited
// is not lost. It returns ctx's error when ctx is done first. One goroutine
// at a time may wait on a line.
//
// The count comes from the kernel's memory (kernel.InterruptCount), not
// from reading the file: the file only wakes the waiter, through the
// poller's edge-triggered epoll, so an interrupt costs no system call here.
func (l *Line) Wait(ctx context.Context) (int, error) {
	if ctx != l.ctx {
		l.watch(ctx)
	}
	var n uint64
	err := l.rc.Read(func(uintptr) bool {
		c := kernel.InterruptCount(l.fd)
		n = c - l.seen
		l.seen = c
		return n > 0
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("irq: wait for vector %d: %w", l.vector, err)
	}
	return int(n), nil
}

// watch makes ctx the context whose end fails Wait: a read deadline in
// the past wakes the poller's waiter, and Wait then reports ctx's error.
func (l *Line) watch(ctx context.Context) {
	if l.stop != nil {
		l.stop()
	}
	l.mu.Lock()
	l.gen++
	gen := l.gen
	l.f.SetReadDeadline(time.Time{}) // the old context's, if it fired
	l.mu.Unlock()
	l.ctx, l.stop = ctx, nil
	if ctx.Done() != nil {
		l.stop = context.AfterFunc(ctx, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.gen == gen {
				l.f.SetReadDeadline(time.Unix(1, 0))
			}
		})
	}
}

// Rearm unmasks an INTx or Level line after the driver acknowledged its
// device; it does nothing for MSI lines.
func (l *Line) Rearm() error {
	if l.gsi < 0 {
		return nil
	}
	var b [8]byte
	if _, err := l.f.Write(b[:]); err != nil {
		return fmt.Errorf("irq: rearm GSI %d: %w", l.gsi, err)
	}
	return nil
}

// Raise sends the line's vector to this CPU, as its device would (for
// tests and for waking a waiter by hand).
func (l *Line) Raise() error {
	if _, _, e := syscall.RawSyscall(kernel.SysSelfIPI, uintptr(l.vector), 0, 0); e != 0 {
		return fmt.Errorf("irq: raise vector %d: %w", l.vector, e)
	}
	return nil
}

// Close releases the vector (an INTx line is masked).
func (l *Line) Close() error { return l.f.Close() }
