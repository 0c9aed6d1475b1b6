package mem

import (
	"errors"
	"testing"
)

// newFrames returns an allocator whose bitmap covers words*64 frames, with
// nothing free yet.
func newFrames(words int) *Frames {
	f := new(Frames)
	f.Init(make([]uint64, words))
	return f
}

// drain allocates until the allocator reports ErrNoMemory and returns the
// addresses it handed out, failing the test on any other error.
func drain(t *testing.T, f *Frames) []uint64 {
	t.Helper()
	var got []uint64
	for {
		a, err := f.Alloc()
		if errors.Is(err, ErrNoMemory) {
			return got
		}
		if err != nil {
			t.Fatalf("Alloc: %v", err)
		}
		got = append(got, a)
		if len(got) > len(f.bitmap)*64 {
			t.Fatalf("Alloc handed out more frames (%d) than the bitmap covers", len(got))
		}
	}
}

// frameSet turns a list of addresses into a set, failing on duplicates.
func frameSet(t *testing.T, addrs []uint64) map[uint64]bool {
	t.Helper()
	set := make(map[uint64]bool, len(addrs))
	for _, a := range addrs {
		if set[a] {
			t.Fatalf("frame %#x handed out twice", a)
		}
		set[a] = true
	}
	return set
}

func TestFramesAlloc(t *testing.T) {
	type span struct{ start, end uint64 }
	tests := []struct {
		name    string
		words   int
		add     []span
		reserve []span
		want    []uint64 // frames Alloc must hand out, in any order
	}{
		{
			name:  "alloc returns every added frame once then ErrNoMemory",
			words: 2,
			add:   []span{{0x1000, 0x4000}, {0x40000, 0x42000}},
			want:  []uint64{0x1000, 0x2000, 0x3000, 0x40000, 0x41000},
		},
		{
			name:  "partial frames at the edges of a range are not added",
			words: 1,
			add:   []span{{0x1800, 0x4800}},
			want:  []uint64{0x2000, 0x3000},
		},
		{
			name:  "a range smaller than a frame adds nothing",
			words: 1,
			add:   []span{{0x1001, 0x1fff}},
			want:  nil,
		},
		{
			name:  "adding the same range twice adds its frames once",
			words: 1,
			add:   []span{{0, 0x2000}, {0x1000, 0x3000}},
			want:  []uint64{0, 0x1000, 0x2000},
		},
		{
			name:  "the part of a range beyond Limit is ignored",
			words: 1,
			add:   []span{{62 * PageSize, 1 << 30}},
			want:  []uint64{62 * PageSize, 63 * PageSize},
		},
		{
			name:  "a range entirely beyond Limit adds nothing",
			words: 1,
			add:   []span{{1 << 30, 2 << 30}},
			want:  nil,
		},
		{
			name:    "reserve removes every frame it overlaps, even partly",
			words:   1,
			add:     []span{{0, 8 * PageSize}},
			reserve: []span{{0x2001, 0x3001}},
			want:    []uint64{0, 0x1000, 0x4000, 0x5000, 0x6000, 0x7000},
		},
		{
			name:    "reserve beyond Limit is ignored",
			words:   1,
			add:     []span{{0, 2 * PageSize}},
			reserve: []span{{1 << 30, 2 << 30}},
			want:    []uint64{0, 0x1000},
		},
		{
			name:  "frames in every word of the bitmap are found",
			words: 4,
			add:   []span{{63 * PageSize, 64 * PageSize}, {130 * PageSize, 131 * PageSize}, {255 * PageSize, 256 * PageSize}},
			want:  []uint64{63 * PageSize, 130 * PageSize, 255 * PageSize},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFrames(tt.words)
			for _, s := range tt.add {
				f.AddRange(s.start, s.end)
			}
			for _, s := range tt.reserve {
				f.Reserve(s.start, s.end)
			}
			if f.Free() != len(tt.want) || f.Total() != len(tt.want) {
				t.Errorf("Free, Total = %d, %d; want %d, %d", f.Free(), f.Total(), len(tt.want), len(tt.want))
			}
			got := frameSet(t, drain(t, f))
			if len(got) != len(tt.want) {
				t.Errorf("allocated %d frames, want %d", len(got), len(tt.want))
			}
			for _, a := range tt.want {
				if !got[a] {
					t.Errorf("frame %#x was never allocated", a)
				}
			}
			if f.Free() != 0 {
				t.Errorf("Free = %d after draining, want 0", f.Free())
			}
			if f.Total() != len(tt.want) {
				t.Errorf("Total = %d after draining, want %d (allocation does not change it)", f.Total(), len(tt.want))
			}
		})
	}
}

func TestFramesInitForgetsPreviousState(t *testing.T) {
	bitmap := []uint64{^uint64(0), ^uint64(0)}
	var f Frames
	f.Init(bitmap)
	if f.Free() != 0 || f.Total() != 0 {
		t.Fatalf("Free, Total = %d, %d after Init; want 0, 0", f.Free(), f.Total())
	}
	if _, err := f.Alloc(); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Alloc on a fresh allocator: err = %v, want ErrNoMemory (Init must clear the bitmap)", err)
	}
	if got, want := f.Limit(), uint64(128*PageSize); got != want {
		t.Errorf("Limit = %#x, want %#x", got, want)
	}
}

func TestFramesRelease(t *testing.T) {
	tests := []struct {
		name    string
		release uint64
		wantErr bool
	}{
		{name: "release of an allocated frame succeeds", release: 0x3000},
		{name: "release of a free frame is an error", release: 0x5000, wantErr: true},
		{name: "release of an unaligned address is an error", release: 0x3001, wantErr: true},
		{name: "release beyond the bitmap is an error", release: 64 * PageSize, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFrames(1)
			f.AddRange(0x1000, 0x6000)
			// Allocate 0x1000..0x3000 (lowest first), leaving 0x4000 and 0x5000 free.
			for range 3 {
				if _, err := f.Alloc(); err != nil {
					t.Fatal(err)
				}
			}
			freeBefore := f.Free()
			err := f.Release(tt.release)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Release(%#x) err = %v, wantErr %v", tt.release, err, tt.wantErr)
			}
			wantFree := freeBefore
			if !tt.wantErr {
				wantFree++
			}
			if f.Free() != wantFree {
				t.Errorf("Free = %d, want %d", f.Free(), wantFree)
			}
			if tt.wantErr {
				return
			}
			got := frameSet(t, drain(t, f))
			if !got[tt.release] {
				t.Errorf("released frame %#x was not handed out again", tt.release)
			}
		})
	}
}

func TestFramesAllocWrapsPastTheHint(t *testing.T) {
	f := newFrames(4)
	f.AddRange(0, 4*64*PageSize)
	all := drain(t, f)
	// The hint now points at the last word; a frame freed in the first word
	// must still be found.
	if err := f.Release(all[5]); err != nil {
		t.Fatal(err)
	}
	a, err := f.Alloc()
	if err != nil || a != all[5] {
		t.Fatalf("Alloc = %#x, %v; want %#x", a, err, all[5])
	}
}

func TestFramesAllocContiguous(t *testing.T) {
	tests := []struct {
		name    string
		free    []uint64 // frame numbers left free
		count   int
		align   uint64
		want    uint64
		wantErr error // nil: success; ErrNoMemory; errAny for a parameter error
	}{
		{
			name:  "contiguous allocation takes the lowest run",
			free:  frameRange(0, 64),
			count: 4, align: PageSize,
			want: 0,
		},
		{
			name:  "contiguous allocation honours alignment and skips holes",
			free:  append(append(frameRange(1, 10), frameRange(16, 19)...), frameRange(32, 40)...),
			count: 4, align: 16 * PageSize,
			want: 32 * PageSize,
		},
		{
			name:  "a run may cross a bitmap word",
			free:  frameRange(60, 70),
			count: 8, align: PageSize,
			want: 60 * PageSize,
		},
		{
			name:  "a run too short everywhere is ErrNoMemory",
			free:  append(frameRange(0, 3), frameRange(4, 7)...),
			count: 4, align: PageSize,
			wantErr: ErrNoMemory,
		},
		{
			name:  "an aligned start whose run is long enough only unaligned is ErrNoMemory",
			free:  frameRange(1, 9),
			count: 4, align: 8 * PageSize,
			wantErr: ErrNoMemory,
		},
		{
			name:  "a run may end at the last frame",
			free:  frameRange(124, 128),
			count: 4, align: PageSize,
			want: 124 * PageSize,
		},
		{name: "zero frames is an error", free: frameRange(0, 8), count: 0, align: PageSize, wantErr: errAny},
		{name: "alignment below a page is an error", free: frameRange(0, 8), count: 1, align: 512, wantErr: errAny},
		{name: "alignment not a power of two is an error", free: frameRange(0, 8), count: 1, align: 3 * PageSize, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFrames(2)
			for _, n := range tt.free {
				f.AddRange(n*PageSize, (n+1)*PageSize)
			}
			freeBefore := f.Free()
			got, err := f.AllocContiguous(tt.count, tt.align)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("AllocContiguous(%d, %#x): %v", tt.count, tt.align, err)
			}
			if tt.wantErr != nil && (err == nil || tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("AllocContiguous(%d, %#x) = %#x, %v; want error %v", tt.count, tt.align, got, err, tt.wantErr)
			}
			if err != nil {
				if f.Free() != freeBefore {
					t.Errorf("a failed allocation changed Free from %d to %d", freeBefore, f.Free())
				}
				return
			}
			if got != tt.want {
				t.Fatalf("AllocContiguous(%d, %#x) = %#x, want %#x", tt.count, tt.align, got, tt.want)
			}
			if f.Free() != freeBefore-tt.count {
				t.Errorf("Free = %d, want %d", f.Free(), freeBefore-tt.count)
			}
			// The run is taken: none of it is handed out again, and every
			// other free frame still is.
			rest := frameSet(t, drain(t, f))
			for i := range uint64(tt.count) {
				if rest[got+i*PageSize] {
					t.Errorf("frame %#x of the run was handed out again", got+i*PageSize)
				}
			}
			if len(rest) != freeBefore-tt.count {
				t.Errorf("%d frames left after the run, want %d", len(rest), freeBefore-tt.count)
			}
			// Each frame of the run can be released exactly once.
			for i := range uint64(tt.count) {
				if err := f.Release(got + i*PageSize); err != nil {
					t.Errorf("Release(%#x): %v", got+i*PageSize, err)
				}
			}
		})
	}
}

// errAny stands for "some error" in tables where the exact error does not
// matter.
var errAny = errors.New("any error")

// frameRange lists the frame numbers in [lo, hi).
func frameRange(lo, hi uint64) []uint64 {
	var out []uint64
	for n := lo; n < hi; n++ {
		out = append(out, n)
	}
	return out
}

func BenchmarkFramesAllocRelease(b *testing.B) {
	f := newFrames(1024)
	f.AddRange(0, f.Limit())
	for b.Loop() {
		a, err := f.Alloc()
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Release(a); err != nil {
			b.Fatal(err)
		}
	}
}
