package devmodel

import "time"

// Connect joins a and b back to back: each frame one's driver transmits
// arrives in the other's receive queue, its offloads resolved for what the
// receiving driver negotiated (a GSO packet passes whole to a driver with
// GUEST_TSO, otherwise it is segmented; a partial checksum passes with
// GUEST_CSUM, otherwise it is completed). A connected device's transmitted
// frames no longer go to Config.Capture.
func Connect(a, b *Net) {
	a.setPeer(b)
	b.setPeer(a)
}

// Disconnect undoes Connect on n and its peer.
func (n *Net) Disconnect() {
	n.mu.Lock()
	p := n.peer
	n.mu.Unlock()
	n.setPeer(nil)
	if p != nil {
		p.mu.Lock()
		mine := p.peer == n
		p.mu.Unlock()
		if mine {
			p.setPeer(nil)
		}
	}
}

// setPeer changes n's end of the wire and wakes n, which may have been
// holding a frame back for the old peer.
func (n *Net) setPeer(p *Net) {
	n.mu.Lock()
	n.peer = p
	n.txStalled = time.Time{}
	n.mu.Unlock()
	n.kick()
}
