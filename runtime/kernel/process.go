package kernel

// The process as the program sees it: its system's name and its
// resource limits.

func sysUnameFill(p uint64) int64 {
	const field = 65
	if !userRange(p, 6*field, true) {
		return -eFAULT
	}
	b := userBytes(p, 6*field)
	clear(b)
	for i, s := range [...]string{"Linux", "govirtio", "6.1.0-govirtio", "#1", "x86_64", "(none)"} {
		copy(b[i*field:], s)
	}
	return 0
}

func sysRlimit(resource, newp, oldp uint64) int64 {
	const infinity = ^uint64(0)
	cur, max := infinity, infinity
	switch resource {
	case 3: // RLIMIT_STACK
		cur = stackLen
	case 7: // RLIMIT_NOFILE
		cur, max = maxFiles, maxFiles
	}
	if oldp != 0 {
		if !userRange(oldp, 16, true) {
			return -eFAULT
		}
		b := userBytes(oldp, 16)
		le.PutUint64(b, cur)
		le.PutUint64(b[8:], max)
	}
	_ = newp // limits are fixed; setting them succeeds and changes nothing
	return 0
}
