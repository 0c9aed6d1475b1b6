package network

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"syscall"

	"github.com/govirtio/govirtio/runtime/kernel"
)

// Bringing the network up by itself, for programs that use Go's net
// package and never call Start (package network/auto, which the image
// builder links into unmodified programs, calls StartAuto from its init).
//
// StartAuto starts the bring-up at once, before main runs, from the kernel
// command line as StartFromArgs does (ip=, gw=, dns= or DHCP): the
// program's sockets are served from the start, and a call made while DHCP
// runs waits for it. A program that calls Start (or StartFromArgs) itself
// in an image where StartAuto ran gets the network StartAuto brings up,
// once it is up: the device is already driven and its Config is not
// applied (Start logs that). A program that wants its own Config is built
// without network/auto.

// autoStart is the automatic bring-up, started at most once.
var autoStart struct {
	once sync.Once
	done chan struct{} // closed when the bring-up ended
	n    *Network      // the network, when it came up
	err  error         // why not, otherwise
}

// StartAuto brings the network up in the background, once, with the
// kernel command line's configuration, and serves the program's sockets
// with it; socket calls made meanwhile wait for it. Without a virtio-net
// device (or with no DHCP answer) it says why on the console and socket(2)
// fails with EAFNOSUPPORT.
func StartAuto() {
	autoStart.once.Do(func() {
		autoStart.done = make(chan struct{})
		kernel.ServeSockets(pendingStack{})
		go bringUp()
	})
}

func bringUp() {
	defer close(autoStart.done)
	logf := log.New(os.Stderr, "", 0).Printf
	cfg, err := ConfigFromArgs(os.Args[1:])
	if err == nil {
		cfg.Logf = logf
		autoStart.n, err = start(context.Background(), cfg)
	}
	if err != nil {
		autoStart.err = fmt.Errorf("network/auto: %w", err)
		logf("%v; the program has no network", autoStart.err)
		kernel.StopServingSockets()
	}
}

// autoNetwork waits for the automatic bring-up, if StartAuto began one,
// and returns its outcome; started is false when there was none.
func autoNetwork(ctx context.Context) (n *Network, started bool, err error) {
	if autoStart.done == nil {
		return nil, false, nil
	}
	select {
	case <-autoStart.done:
		return autoStart.n, true, autoStart.err
	case <-ctx.Done():
		return nil, true, ctx.Err()
	}
}

// pendingStack serves the sockets opened while the automatic bring-up
// runs: it waits for it, then makes them on the network it brought up.
type pendingStack struct{}

func (pendingStack) Socket(h *kernel.SocketHandle, domain, typ, protocol int) (kernel.Socket, syscall.Errno) {
	n, _, err := autoNetwork(context.Background())
	if err != nil {
		if errors.Is(err, ErrNoDevice) {
			return nil, syscall.EAFNOSUPPORT
		}
		return nil, syscall.ENETDOWN
	}
	return socketStack{n}.Socket(h, domain, typ, protocol)
}
