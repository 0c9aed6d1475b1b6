package kernel

import (
	"strconv"

	"github.com/govirtio/govirtio/runtime/cpu"
)

// Auxiliary vector keys (include/uapi/linux/auxvec.h).
const (
	atNull   = 0
	atPagesz = 6
	atHwcap  = 16
	atClktck = 17
	atSecure = 23
	atRandom = 25
	maxArgs  = 64
)

// buildInitialStack writes the System V initial process stack below top
// and returns the stack pointer for _rt0_amd64_linux: argc, argv[],
// NULL, envp[], NULL, auxv pairs, AT_NULL; strings and 16 random bytes
// above. argv[0] is "govirtio"; the command line's words follow, except
// KEY=value words with an upper-case key, which go to the environment
// (GODEBUG=..., GOMAXPROCS=...).
func buildInitialStack(top uint64) uint64 {
	var argv, envp [maxArgs]uint64
	argc, envc := 0, 0
	p := top
	push := func(s []byte) uint64 {
		p -= uint64(len(s)) + 1
		if !userRange(p, uint64(len(s))+1, true) {
			panicKernel("initial stack", p)
		}
		b := userBytes(p, len(s)+1)
		copy(b, s)
		b[len(s)] = 0
		return p
	}
	argv[argc] = push([]byte("govirtio"))
	argc++
	line := boot.cmdline[:boot.ncmd]
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if j > i {
			w := line[i:j]
			if isEnvWord(w) && envc < maxArgs {
				envp[envc] = push(w)
				envc++
			} else if argc < maxArgs {
				argv[argc] = push(w)
				argc++
			}
		}
		i = j
	}
	// Unless the command line sets it, GOMEMLIMIT tells the Go runtime how
	// much RAM there is, so that it collects and returns memory before the
	// machine runs out (there is no swap and no overcommit to hide behind).
	hasLimit := false
	for _, e := range envp[:envc] {
		if string(userBytes(e, 11)) == "GOMEMLIMIT=" {
			hasLimit = true
		}
	}
	if !hasLimit && envc < maxArgs {
		var buf [40]byte // room enough: AppendUint does not allocate
		w := append(buf[:0], "GOMEMLIMIT="...)
		w = strconv.AppendUint(w, memLimit()>>20, 10)
		w = append(w, "MiB"...)
		envp[envc] = push(w)
		envc++
	}
	p -= 16
	p &^= 15
	if !userRange(p, 16, true) {
		panicKernel("initial stack", p)
	}
	random := p
	rb := userBytes(random, 16)
	for i := 0; i < 16; i += 8 {
		le.PutUint64(rb[i:], randomWord())
	}
	_, _, _, hwcap := cpu.CPUID(1, 0)
	auxv := [...]uint64{
		atPagesz, 4096, atClktck, 100, atHwcap, uint64(hwcap),
		atSecure, 0, atRandom, random, atSysinfoEhdr, initVDSO(), atNull, 0,
	}
	words := 1 + argc + 1 + envc + 1 + len(auxv)
	p -= uint64(words) * 8
	p &^= 15
	if !userRange(p, uint64(words)*8, true) {
		panicKernel("initial stack", p)
	}
	w := userBytes(p, words*8)
	i := 0
	put := func(v uint64) { le.PutUint64(w[i*8:], v); i++ }
	put(uint64(argc))
	for _, a := range argv[:argc] {
		put(a)
	}
	put(0)
	for _, e := range envp[:envc] {
		put(e)
	}
	put(0)
	for _, v := range auxv {
		put(v)
	}
	return p
}

// isEnvWord reports KEY=value with KEY in [A-Z0-9_].
func isEnvWord(w []byte) bool {
	for i, c := range w {
		switch {
		case c == '=':
			return i > 0
		case c >= 'A' && c <= 'Z', c == '_', c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return false
}

// memLimit is the soft memory limit offered to the Go runtime: the free
// RAM, less room for page tables and kernel use (1/16, at least 4 MiB).
// The free RAM counts the bss pages releaseZeroBSS gives back just after
// the initial stack is built (for httpd at -m 64M the limit was 13 MiB
// without them, instead of about 45, and the collector ran all the time).
func memLimit() uint64 {
	free := uint64(frames.Free())*4096 + zeroBSSEstimate()
	reserve := free / 16
	if reserve < 4<<20 {
		reserve = 4 << 20
	}
	if free < 2*reserve {
		return free / 2
	}
	return free - reserve
}
