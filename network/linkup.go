package network

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// After the link comes back, restartCongestion watches the TCP connections
// for restartWindow and gives each one that went through a retransmission
// timeout a fresh congestion state once the timeout's recovery is over.
//
// Why: netstack lowers ssthresh at every retransmission timeout, from the
// congestion window at that moment (CUBIC: cwnd*0.7, at least 2; Reno:
// half the segments outstanding, which it has just set to 0). An outage
// longer than about 600 ms brings a second timeout while cwnd is 1, so
// ssthresh ends at 2, and once the link is back the connection leaves slow
// start at two segments and grows in congestion avoidance: a 64 MiB
// download took 8-20 s after a one-second flap instead of under 3. RFC
// 5681 §3.1 says ssthresh is held constant on repeated timeouts, as Linux
// does. Netstack offers no way to set ssthresh, but setting a connection's
// congestion control algorithm starts it afresh (initial window, ssthresh
// unbounded), as a new connection on a path it knows nothing about; that
// is done once the connection has left RTO recovery, so that a timeout
// still pending from the outage does not undo it.
const (
	restartWindow = 10 * time.Second
	restartPoll   = 10 * time.Millisecond
)

// linkCameUp starts restartCongestion, or extends the watch of the one
// running: one goroutine, however often the link flaps.
func (n *Network) linkCameUp() {
	n.restartUntil.Store(time.Now().Add(restartWindow).UnixNano())
	if n.restarting.CompareAndSwap(false, true) {
		go n.restartCongestion()
	}
}

// restartCongestion runs after the link came up until restartUntil; see
// above. It pauses its work while the link is down.
func (n *Network) restartCongestion() {
	inRTO := make(map[tcpip.Endpoint]bool) // connections seen in RTO recovery since the link came up
	for {
		if time.Now().UnixNano() >= n.restartUntil.Load() {
			n.restarting.Store(false)
			// A link that came up meanwhile found this goroutine still
			// running: look again.
			if time.Now().UnixNano() >= n.restartUntil.Load() || !n.restarting.CompareAndSwap(false, true) {
				return
			}
		}
		time.Sleep(restartPoll)
		if !n.Device.LinkUp() {
			continue
		}
		for _, te := range n.Stack.RegisteredEndpoints() {
			ep, ok := te.(tcpip.Endpoint)
			if !ok {
				continue
			}
			var info tcpip.TCPInfoOption
			if ep.GetSockOpt(&info) != nil || tcp.EndpointState(info.State) != tcp.StateEstablished {
				continue
			}
			if info.CcState == tcpip.RTORecovery {
				inRTO[ep] = true
				continue
			}
			if !inRTO[ep] {
				continue
			}
			delete(inRTO, ep)
			var cc tcpip.CongestionControlOption
			if ep.GetSockOpt(&cc) == nil && ep.SetSockOpt(&cc) == nil {
				n.congestionRestarts.Add(1)
			}
		}
	}
}
