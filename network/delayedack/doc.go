// Package delayedack is a gVisor queueing discipline that holds back
// pure TCP ACKs for a moment, so that the data the application is about
// to send carries the acknowledgement instead: the delayed ACK of RFC 1122
// §4.2.3.2 and RFC 9293 §3.8.6.3, which gVisor's TCP does not implement
// (it acknowledges every batch of segments it processes at once).
//
// On a request/response connection that halves the packets the guest
// sends: without it every response is preceded by a bare ACK of its
// request, and under QEMU each packet costs a doorbell write that exits to
// the device model and a completion.
//
// # Rules
//
// A packet is a pure ACK when it is TCP over IPv4 or IPv6 with no payload,
// the ACK flag and no SYN, FIN, RST or URG, and no SACK option (an ACK that
// reports loss goes out at once). It is held unless it acknowledges two
// full-sized segments or more beyond the last acknowledgement sent on its
// connection (a bulk receiver's ACK goes at once, as RFC 1122 asks). Per
// connection at most one is held:
//
//   - a later packet of the connection that acknowledges at least as much
//     replaces it: the held ACK is dropped and the later packet goes out;
//   - a later pure ACK that acknowledges the same sequence number (a
//     duplicate ACK or a window update) sends both, in order;
//   - otherwise the held ACK leaves when its delay passes (Options.Delay,
//     1 ms by default) or when the discipline closes.
//
// So a bulk receiver acknowledges at once, a duplicate ACK is late by at
// most the delay, and no acknowledgement is ever lost.
//
// # Cost
//
// Holding arms a timer (stopped again when the response supersedes the
// ACK). Under QEMU's TCG, where a doorbell write is cheap next to
// emulated Go code, that costs the guest about as much CPU as sending the
// ACK would: wrk -c1 on one connection measured 3% more guest CPU per
// request with 1 ms delayed ACKs than without, for half the packets on the
// wire. network.Config.ACKDelay turns it on.
package delayedack
