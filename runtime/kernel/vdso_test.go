package kernel

import "testing"

// The vDSO image reads, the way the Go runtime's parser reads it
// (runtime/vdso_linux.go), as exporting __vdso_clock_gettime at version
// LINUX_2.6 at the address of vdsoClockGettime, and nothing else.
func TestVDSOExportsClockGettimeAtLinux26(t *testing.T) {
	base := initVDSO()
	b := vdsoBytes()
	u16 := func(off uint64) uint64 { return uint64(le.Uint16(b[off:])) }
	u32 := func(off uint64) uint64 { return uint64(le.Uint32(b[off:])) }
	u64 := func(off uint64) uint64 { return le.Uint64(b[off:]) }
	str := func(off uint64) string {
		end := off
		for b[end] != 0 {
			end++
		}
		return string(b[off:end])
	}
	if string(b[:4]) != "\x7fELF" || b[4] != 2 {
		t.Fatalf("not an ELF-64 header: % x", b[:5])
	}
	// Program headers: the first PT_LOAD gives the load offset, PT_DYNAMIC
	// the dynamic section.
	var loadOffset, dyn uint64
	var foundLoad, foundDyn bool
	for i := uint64(0); i < u16(56); i++ {
		ph := u64(32) + i*56
		switch u32(ph) {
		case elfPTLoad:
			if !foundLoad {
				loadOffset, foundLoad = base+u64(ph+8)-u64(ph+16), true
				if u64(ph+40) != uint64(vdsoSize) {
					t.Errorf("PT_LOAD p_memsz %d, want the image's %d bytes", u64(ph+40), vdsoSize)
				}
			}
		case elfPTDynamic:
			dyn, foundDyn = u64(ph+8), true
		}
	}
	if !foundLoad || !foundDyn {
		t.Fatalf("PT_LOAD %v, PT_DYNAMIC %v", foundLoad, foundDyn)
	}
	tags := map[uint64]uint64{}
	for d := dyn; u64(d) != elfDTNull; d += 16 {
		tags[u64(d)] = u64(d+8) + loadOffset - base // back to an offset in b
	}
	for _, tag := range []uint64{elfDTHash, elfDTStrtab, elfDTSymtab, elfDTVersym, elfDTVerdef} {
		if _, ok := tags[tag]; !ok {
			t.Fatalf("dynamic section lacks tag %#x", tag)
		}
	}
	// The version Go asks for: LINUX_2.6 with its ELF hash 0x3ae75f6.
	version := uint64(0)
	for def := tags[elfDTVerdef]; ; def += u32(def + 16) {
		if u16(def+2)&elfVerFlgBase == 0 && u32(def+8) == 0x3ae75f6 && str(tags[elfDTStrtab]+u32(def+u32(def+12))) == "LINUX_2.6" {
			version = u16(def + 4)
		}
		if u32(def+16) == 0 {
			break
		}
	}
	if version == 0 {
		t.Fatal("no LINUX_2.6 version definition")
	}
	// Look each of Go's symbols up through the SysV hash table, with the
	// hashes Go uses (runtime/vdso_linux_amd64.go).
	hash := tags[elfDTHash]
	nbucket := u32(hash)
	for _, k := range []struct {
		name   string
		hash   uint32
		wanted bool
	}{{"__vdso_clock_gettime", 0xd35ec75, true}, {"__vdso_gettimeofday", 0x315ca59, false}, {"__vdso_getrandom", 0x25425d, false}} {
		if h := elfHash(k.name); h != k.hash {
			t.Errorf("elfHash(%s) = %#x, want %#x", k.name, h, k.hash)
		}
		found := false
		for sym := u32(hash + 8 + 4*(uint64(k.hash)%nbucket)); sym != 0; sym = u32(hash + 8 + 4*nbucket + 4*sym) {
			s := tags[elfDTSymtab] + 24*sym
			if str(tags[elfDTStrtab]+u32(s)) != k.name || u16(tags[elfDTVersym]+2*sym)&0x7fff != version ||
				b[s+4] != elfSymFunc || u16(s+6) == 0 {
				continue
			}
			found = true
			if addr := loadOffset + u64(s+8); addr != uint64(vdsoClockGettimeAddr()) {
				t.Errorf("%s at %#x, want vdsoClockGettime at %#x", k.name, addr, vdsoClockGettimeAddr())
			}
		}
		if found != k.wanted {
			t.Errorf("%s exported: %v, want %v", k.name, found, k.wanted)
		}
	}
}
