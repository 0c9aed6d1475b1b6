package mem

import (
	"errors"
	"math/bits"
)

// Errors are sentinel values, never built with fmt: the kernel calls this
// package from trap handlers, where nothing may allocate.
var (
	// ErrNoMemory reports that no free frame (or run of frames) was left.
	ErrNoMemory = errors.New("mem: out of physical memory")
	// ErrBadRequest reports a contiguous allocation of no frames or with
	// an alignment that is not a power of two of at least a page.
	ErrBadRequest = errors.New("mem: bad contiguous allocation request")
	// ErrNotOwned reports the release of a frame outside the bitmap or
	// not page aligned.
	ErrNotOwned = errors.New("mem: release of a frame the allocator does not own")
	// ErrDoubleRelease reports the release of a frame that is free.
	ErrDoubleRelease = errors.New("mem: double release of a frame")
)

// Frames is a physical page-frame allocator: one bit per 4 KiB frame,
// set when the frame is free. Allocation scans from a moving hint, so
// repeated single-frame allocations are amortised O(1).
type Frames struct {
	bitmap []uint64 // bit i of word w is frame w*64+i; set = free; set once by Init
	hint   int      // word index where the next search starts
	free   int      // number of free frames
	total  int      // number of frames ever added with Free
}

// Init gives the allocator its bitmap, covering len(bitmap)*64 frames from
// physical address 0. Every frame starts used; add usable RAM with
// AddRange.
func (f *Frames) Init(bitmap []uint64) {
	clear(bitmap)
	f.bitmap = bitmap
	f.hint, f.free, f.total = 0, 0, 0
}

// Limit is the first physical address past what the bitmap covers.
func (f *Frames) Limit() uint64 { return uint64(len(f.bitmap)) * 64 * PageSize }

// AddRange marks the whole frames inside [start, end) free. Parts beyond
// Limit are ignored.
func (f *Frames) AddRange(start, end uint64) {
	start = (start + PageSize - 1) &^ (PageSize - 1)
	end &^= PageSize - 1
	if end > f.Limit() {
		end = f.Limit()
	}
	for a := start; a < end; a += PageSize {
		n := a / PageSize
		if f.bitmap[n/64]&(1<<(n%64)) == 0 {
			f.bitmap[n/64] |= 1 << (n % 64)
			f.free++
			f.total++
		}
	}
}

// Reserve marks the frames overlapping [start, end) used, so that they are
// never handed out (the kernel image, boot structures).
func (f *Frames) Reserve(start, end uint64) {
	start &^= PageSize - 1
	if end > f.Limit() {
		end = f.Limit()
	}
	for a := start; a < end; a += PageSize {
		n := a / PageSize
		if f.bitmap[n/64]&(1<<(n%64)) != 0 {
			f.bitmap[n/64] &^= 1 << (n % 64)
			f.free--
			f.total--
		}
	}
}

// Alloc takes one free frame and returns its physical address. The caller
// zeroes it if it needs zeroes.
func (f *Frames) Alloc() (uint64, error) {
	n := len(f.bitmap)
	for i := 0; i < n; i++ {
		w := f.hint + i
		if w >= n {
			w -= n
		}
		if word := f.bitmap[w]; word != 0 {
			b := bits.TrailingZeros64(word)
			f.bitmap[w] = word &^ (1 << b)
			f.hint = w
			f.free--
			return (uint64(w)*64 + uint64(b)) * PageSize, nil
		}
	}
	return 0, ErrNoMemory
}

// AllocContiguous takes count physically contiguous free frames whose first
// address is a multiple of align (a power of two, at least PageSize) and
// returns that address.
func (f *Frames) AllocContiguous(count int, align uint64) (uint64, error) {
	if count <= 0 {
		return 0, ErrBadRequest
	}
	if align < PageSize || align&(align-1) != 0 {
		return 0, ErrBadRequest
	}
	step := align / PageSize
	frames := uint64(len(f.bitmap)) * 64
	for first := uint64(0); first+uint64(count) <= frames; first += step {
		run := 0
		for run < count && f.isFree(first+uint64(run)) {
			run++
		}
		if run == count {
			for i := uint64(0); i < uint64(count); i++ {
				n := first + i
				f.bitmap[n/64] &^= 1 << (n % 64)
			}
			f.free -= count
			return first * PageSize, nil
		}
	}
	return 0, ErrNoMemory
}

func (f *Frames) isFree(n uint64) bool { return f.bitmap[n/64]&(1<<(n%64)) != 0 }

// Release returns the frame at phys to the pool. Releasing a frame that is
// already free is a kernel bug and reported as an error.
func (f *Frames) Release(phys uint64) error {
	n := phys / PageSize
	if phys%PageSize != 0 || n/64 >= uint64(len(f.bitmap)) {
		return ErrNotOwned
	}
	if f.isFree(n) {
		return ErrDoubleRelease
	}
	f.bitmap[n/64] |= 1 << (n % 64)
	f.free++
	return nil
}

// Free is the number of free frames; Total the number of frames managed.
func (f *Frames) Free() int  { return f.free }
func (f *Frames) Total() int { return f.total }
