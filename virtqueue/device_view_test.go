package virtqueue

import "testing"

func TestNewDeviceViewRefusesRingsItCannotHold(t *testing.T) {
	var m HeapDMA
	mem, _, _ := m.Alloc(1<<16, 4096)
	tests := []struct {
		name        string
		size        int
		avail, used []byte
		ok          bool
	}{
		{"rings as SplitSizes says", 8, mem[:8+2*8], mem[4096 : 4096+8+8*8], true},
		{"size 1", 1, mem[:10], mem[4096 : 4096+16], true},
		{"avail ring too short for used_event's word", 8, mem[:6+2*8], mem[4096 : 4096+8+8*8], false},
		{"used ring too short for avail_event's word", 8, mem[:8+2*8], mem[4096 : 4096+6+8*8], false},
		{"misaligned avail ring", 8, mem[2 : 2+8+2*8], mem[4096 : 4096+8+8*8], false},
		{"size not a power of two", 6, mem[:100], mem[4096:], false},
		{"size too large", 65536, mem, mem, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDeviceView(tt.size, tt.avail, tt.used)
			if (err == nil) != tt.ok {
				t.Fatalf("NewDeviceView: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestSplitSizesCoverTheProtocolWords(t *testing.T) {
	tests := []struct {
		size              int
		desc, avail, used int
	}{
		{1, 16, 10, 16},
		{256, 4096, 520, 2056},
		{32768, 524288, 65544, 262152},
	}
	for _, tt := range tests {
		d, a, u := SplitSizes(tt.size)
		if d != tt.desc || a != tt.avail || u != tt.used {
			t.Errorf("SplitSizes(%d) = %d %d %d, want %d %d %d", tt.size, d, a, u, tt.desc, tt.avail, tt.used)
		}
	}
}
