package virtionet

import (
	"fmt"

	"github.com/govirtio/govirtio/virtqueue"
)

// fakeQueue is a virtqueue.Queue for unit tests and fuzzing: chains live in
// Go slices, and the test plays the device by completing them with chosen
// (possibly hostile) used entries. Pop validates like the real queue: an
// unknown id is ErrBadID or ErrNotInFlight and frees nothing; a length beyond
// the writable bytes is ErrBadLength and frees the chain.
type fakeQueue struct {
	// Queue is nil: it only makes fakeQueue satisfy the interface when
	// methods are added to it; calling one the fake lacks panics.
	virtqueue.Queue

	size     int                           // descriptors
	free     int                           // free descriptors
	freeIDs  []uint16                      // head ids available
	chains   map[uint16][]virtqueue.Buffer // in-flight chains by head
	store    [][]virtqueue.Buffer          // per head: reusable chain storage (no allocation per Add)
	avail    []uint16                      // heads added, not yet taken by the device, in order
	used     []fakeUsed                    // used entries the device published
	usedHead int                           // next entry of used for Pop
	inflight map[uint64]bool               // buffer addresses currently posted
	reposted int                           // Add calls with an address already in flight (must stay 0)
	kicks    int                           // Kick calls
	indirect bool                          // every chain takes one descriptor (INDIRECT_DESC)
	intrOn   bool                          // interrupts enabled (EnableInterrupts since the last DisableInterrupts)
	stats    virtqueue.Stats               // counters
}

// fakeUsed is one used-ring entry as the device wrote it.
type fakeUsed struct {
	id  uint32 // the id; may be hostile
	len uint32 // the length; may be hostile
}

func newFakeQueue(size int) *fakeQueue {
	q := &fakeQueue{size: size, free: size, chains: map[uint16][]virtqueue.Buffer{}, inflight: map[uint64]bool{}}
	for i := size - 1; i >= 0; i-- {
		q.freeIDs = append(q.freeIDs, uint16(i))
	}
	return q
}

func (q *fakeQueue) Size() int                             { return q.size }
func (q *fakeQueue) Addresses() (desc, avail, used uint64) { return 0, 0, 0 }
func (q *fakeQueue) DisableInterrupts()                    { q.intrOn = false }
func (q *fakeQueue) EnableInterrupts() bool                { q.intrOn = true; return len(q.used) > q.usedHead }
func (q *fakeQueue) Free() int                             { return q.free }
func (q *fakeQueue) InFlight() int                         { return len(q.chains) }
func (q *fakeQueue) Stats() virtqueue.Stats                { return q.stats }

func (q *fakeQueue) Kick() bool {
	q.kicks++
	return true
}

func (q *fakeQueue) Add(bufs []virtqueue.Buffer) (uint16, error) {
	if len(bufs) == 0 {
		return 0, virtqueue.ErrNoBuffers
	}
	if len(bufs) > q.size {
		return 0, fmt.Errorf("%w: %d", virtqueue.ErrChainTooLong, len(bufs))
	}
	cost := len(bufs)
	if q.indirect {
		cost = 1
	}
	if cost > q.free {
		q.stats.Full++
		return 0, virtqueue.ErrFull
	}
	for _, b := range bufs {
		if b.Writable && q.inflight[b.Addr] {
			q.reposted++
		}
		if b.Writable {
			q.inflight[b.Addr] = true
		}
	}
	head := q.freeIDs[len(q.freeIDs)-1]
	q.freeIDs = q.freeIDs[:len(q.freeIDs)-1]
	q.free -= cost
	if q.store == nil {
		q.store = make([][]virtqueue.Buffer, q.size)
	}
	q.store[head] = append(q.store[head][:0], bufs...)
	q.chains[head] = q.store[head]
	q.avail = append(q.avail, head)
	q.stats.Added++
	return head, nil
}

func (q *fakeQueue) release(head uint16) {
	for _, b := range q.chains[head] {
		delete(q.inflight, b.Addr)
	}
	if q.indirect {
		q.free++
	} else {
		q.free += len(q.chains[head])
	}
	delete(q.chains, head)
	q.freeIDs = append(q.freeIDs, head)
	for i, h := range q.avail {
		if h == head {
			q.avail = append(q.avail[:i], q.avail[i+1:]...)
			break
		}
	}
}

// Pop follows Split.Pop's contract exactly: ok=false with no error when
// nothing was used; a device violation comes back as ok=true with a
// *DeviceError (and the head when it is valid).
func (q *fakeQueue) Pop() (uint16, uint32, bool, error) {
	if q.usedHead == len(q.used) {
		return 0, 0, false, nil
	}
	e := q.used[q.usedHead]
	q.usedHead++
	if q.usedHead == len(q.used) {
		q.used, q.usedHead = q.used[:0], 0 // keep the array: no allocation
	}
	if e.id >= uint32(q.size) {
		q.stats.BadID++
		return 0, 0, true, &virtqueue.DeviceError{Err: virtqueue.ErrBadID, ID: e.id}
	}
	head := uint16(e.id)
	chain, ok := q.chains[head]
	if !ok {
		q.stats.NotInFlight++
		return 0, 0, true, &virtqueue.DeviceError{Err: virtqueue.ErrNotInFlight, ID: e.id}
	}
	var writable uint32
	for _, b := range chain {
		if b.Writable {
			writable += b.Len
		}
	}
	q.release(head)
	if e.len > writable {
		q.stats.BadLength++
		return head, 0, true, &virtqueue.DeviceError{Err: virtqueue.ErrBadLength, ID: e.id, Len: e.len, Posted: writable}
	}
	q.stats.Popped++
	return head, e.len, true, nil
}

func (q *fakeQueue) DetachUnused() (uint16, bool) {
	for head := range q.chains {
		q.release(head)
		q.stats.Detached++
		return head, true
	}
	return 0, false
}

// takeAvail returns the oldest chain the driver posted and not yet taken,
// as the device would read it from the avail ring.
func (q *fakeQueue) takeAvail() (uint16, []virtqueue.Buffer, bool) {
	if len(q.avail) == 0 {
		return 0, nil, false
	}
	head := q.avail[0]
	q.avail = append(q.avail[:0], q.avail[1:]...) // keep the array: no allocation
	return head, q.chains[head], true
}

// pushUsed publishes a used entry.
func (q *fakeQueue) pushUsed(id, n uint32) { q.used = append(q.used, fakeUsed{id: id, len: n}) }
