package kernel

import (
	"bytes"
	"os"
	"testing"

	"github.com/govirtio/govirtio/runtime/acpi"
)

// microvmTables places QEMU 7.2 microvm's tables (runtime/acpi's testdata)
// at the physical addresses QEMU gave them, in the test kernel's RAM, and
// returns them by signature.
func microvmTables(t *testing.T) map[string][]byte {
	t.Helper()
	at := map[string]uint64{"RSDP": 0xf34d0, "XSDT": 0xeffb6, "FACP": 0xefe58, "APIC": 0xeff64, "DSDT": 0xefc80}
	tables := map[string][]byte{}
	for name, p := range at {
		b, err := os.ReadFile("../acpi/testdata/qemu-7.2-microvm/" + name + ".bin")
		if err != nil {
			t.Fatal(err)
		}
		copy(physBytes(p, len(b)), b)
		tables[name] = b
	}
	acpiUsed, acpiCount, madt, madtFound = 0, 0, acpi.MADT{}, false
	t.Cleanup(func() { acpiUsed, acpiCount, madt, madtFound = 0, 0, acpi.MADT{}, false })
	return tables
}

// acpiTableCall asks for a table as ACPITable does, into user memory.
func (k *testKernel) acpiTableCall(sig string, index, size uint64) (int64, []byte) {
	p, b := k.at(0x4000, int(size))
	_, r := call(SysACPITable, uint64(le.Uint32([]byte(sig))), index, p, size)
	return r, b
}

func TestBootTablesFromPVHRSDPAreCopiedAndTheMADTRead(t *testing.T) {
	k := setupKernel(t)
	want := microvmTables(t)
	boot.rsdp = 0xf34d0
	t.Cleanup(func() { boot.rsdp = 0 })
	readACPI()
	if !madtFound || madt.NumIOAPICs != 2 || madt.IOAPICs[1].Address != 0xfec10000 || madt.IOAPICs[1].GSIBase != 24 {
		t.Fatalf("MADT %+v (found %v), want the second I/O APIC at 0xfec10000 from GSI 24", madt, madtFound)
	}
	for _, sig := range []string{"XSDT", "FACP", "APIC", "DSDT"} {
		n, b := k.acpiTableCall(sig, 0, 4096)
		if n != int64(len(want[sig])) || !bytes.Equal(b[:n], want[sig]) {
			t.Errorf("%s: SysACPITable returned %d and different bytes; want %d", sig, n, len(want[sig]))
		}
	}
	if n, _ := k.acpiTableCall("SSDT", 0, 4096); n != -eNOENT {
		t.Errorf("SSDT: %d, want -ENOENT", n)
	}
	if n, _ := k.acpiTableCall("DSDT", 1, 4096); n != -eNOENT {
		t.Errorf("second DSDT: %d, want -ENOENT", n)
	}
}

func TestBufferSmallerThanTheTableGetsItsStartAndItsLength(t *testing.T) {
	k := setupKernel(t)
	want := microvmTables(t)
	boot.rsdp = 0xf34d0
	t.Cleanup(func() { boot.rsdp = 0 })
	readACPI()
	n, b := k.acpiTableCall("DSDT", 0, 64)
	if n != int64(len(want["DSDT"])) || !bytes.Equal(b[:64], want["DSDT"][:64]) {
		t.Errorf("SysACPITable into 64 bytes = %d; want %d and the first 64 bytes", n, len(want["DSDT"]))
	}
	if _, r := call(SysACPITable, uint64(le.Uint32([]byte("DSDT"))), 0, 0x10, 4096); r != -eFAULT {
		t.Errorf("buffer in page 0: %d, want -EFAULT", r)
	}
}

func TestRSDPIsFoundInTheBIOSAreaWhenStartInfoHasNone(t *testing.T) {
	setupKernel(t)
	microvmTables(t)
	boot.rsdp = 0
	if p := findRSDP(); p != 0xf34d0 {
		t.Fatalf("findRSDP = %#x, want 0xf34d0", p)
	}
	readACPI()
	if !madtFound || acpiCount != 4 {
		t.Errorf("%d tables copied (MADT found %v), want 4", acpiCount, madtFound)
	}
}

func TestGSIsRouteToTheIOAPICServingThem(t *testing.T) {
	saved, n := ioapics, nIOAPICs
	t.Cleanup(func() { ioapics, nIOAPICs = saved, n })
	ioapics[0] = ioapicUnit{base: 0xfec00000, gsiBase: 0, inputs: 24}
	ioapics[1] = ioapicUnit{base: 0xfec10000, gsiBase: 24, inputs: 24}
	nIOAPICs = 2
	for _, c := range []struct {
		gsi  int
		base uint64
		pin  int
		ok   bool
	}{{0, 0xfec00000, 0, true}, {23, 0xfec00000, 23, true}, {24, 0xfec10000, 0, true}, {47, 0xfec10000, 23, true}, {48, 0, 0, false}, {-1, 0, 0, false}} {
		u, pin, ok := ioapicFor(c.gsi)
		if ok != c.ok || ok && (u.base != c.base || pin != c.pin) {
			t.Errorf("ioapicFor(%d) = %+v pin %d %v; want %#x pin %d %v", c.gsi, u, pin, ok, c.base, c.pin, c.ok)
		}
	}
}
