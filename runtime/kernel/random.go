package kernel

import "github.com/govirtio/govirtio/runtime/cpu"

var rngState uint64 // xorshift fallback when the CPU has no RDRAND

func sysRandom(buf, n uint64) int64 {
	if n > 1<<20 {
		n = 1 << 20
	}
	if !userRange(buf, n, true) {
		return -eFAULT
	}
	b := userBytes(buf, int(n))
	for i := 0; i < len(b); i += 8 {
		v := randomWord()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return int64(n)
}

// randomWord returns 64 random bits: RDRAND when the CPU has it, else a
// xorshift generator seeded from the TSC (not cryptographic; the boot
// message says so).
func randomWord() uint64 {
	if hasRDRAND {
		for i := 0; i < 10; i++ {
			if v, ok := cpu.RDRAND(); ok {
				return v
			}
		}
	}
	if rngState == 0 {
		rngState = cpu.RDTSC() | 1
	}
	rngState ^= rngState << 13
	rngState ^= rngState >> 7
	rngState ^= rngState << 17
	return rngState ^ cpu.RDTSC()
}

var hasRDRAND bool
