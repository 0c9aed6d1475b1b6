package acpi

import (
	"bytes"
	"errors"
	"testing"
)

func TestQEMUMicrovmTablesChainFromTheRSDP(t *testing.T) {
	r, err := ParseRSDP(golden(t, "qemu-7.2-microvm", "RSDP"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision != 2 || r.XSDT != 0xeffb6 || r.Root() != 0xeffb6 || string(r.OEMID[:]) != "BOCHS " {
		t.Fatalf("RSDP %+v", r)
	}
	s, err := ParseSDT(golden(t, "qemu-7.2-microvm", "XSDT"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.Entry(0) != 0xefe58 || s.Entry(1) != 0xeff64 {
		t.Fatalf("XSDT lists %d tables: %#x %#x", s.Len(), s.Entry(0), s.Entry(1))
	}
	a, err := DSDTAddress(golden(t, "qemu-7.2-microvm", "FACP"))
	if err != nil || a != 0xefc80 {
		t.Fatalf("DSDTAddress = %#x, %v; want 0xefc80", a, err)
	}
}

func TestQEMUQ35TablesChainFromAnACPI1RSDP(t *testing.T) {
	r, err := ParseRSDP(golden(t, "qemu-7.2-q35", "RSDP"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision != 0 || r.XSDT != 0 || r.Root() != 0x3fe22a4 {
		t.Fatalf("RSDP %+v", r)
	}
	s, err := ParseSDT(golden(t, "qemu-7.2-q35", "RSDT"))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{0x3fe209c, 0x3fe2190, 0x3fe2208, 0x3fe2240, 0x3fe227c}
	if s.Len() != len(want) {
		t.Fatalf("RSDT lists %d tables, want %d", s.Len(), len(want))
	}
	for i, w := range want {
		if s.Entry(i) != w {
			t.Errorf("entry %d = %#x, want %#x", i, s.Entry(i), w)
		}
	}
	a, err := DSDTAddress(golden(t, "qemu-7.2-q35", "FACP"))
	if err != nil || a != 0x3fe0040 {
		t.Fatalf("DSDTAddress = %#x, %v; want 0x3fe0040", a, err)
	}
}

func TestRSDPThatDoesNotCheckOutIsRefused(t *testing.T) {
	good := golden(t, "qemu-7.2-microvm", "RSDP")
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"shorter than ACPI 1.0's 20 bytes", good[:19], ErrShort},
		{"revision 2 cut to 20 bytes", good[:20], ErrShort},
		{"wrong signature", mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrSignature},
		{"first checksum wrong", mod(func(b []byte) []byte { b[8]++; return b }), ErrChecksum},
		{"extended checksum wrong", mod(func(b []byte) []byte { b[32]++; return b }), ErrChecksum},
		{"length past the bytes there are", mod(func(b []byte) []byte { b[20] = 200; return fixChecksum(b, 32) }), ErrLength},
		{"length shorter than the structure", mod(func(b []byte) []byte { b[20] = 20; return fixChecksum(b, 32) }), ErrLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseRSDP(c.b); !errors.Is(err, c.want) {
				t.Errorf("ParseRSDP = %v, want %v", err, c.want)
			}
		})
	}
}

func TestTableThatDoesNotCheckOutIsRefused(t *testing.T) {
	good := golden(t, "qemu-7.2-microvm", "XSDT")
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"shorter than a header", good[:HeaderSize-1], ErrShort},
		{"cut before its length", good[:len(good)-1], ErrShort},
		{"a byte changed", func() []byte { b := bytes.Clone(good); b[40]++; return b }(), ErrChecksum},
		{"length below the header's", func() []byte { b := bytes.Clone(good); b[4] = 10; return fixChecksum(b, 9) }(), ErrLength},
		{"XSDT entries not a whole number", sdt("XSDT", make([]byte, 12)), ErrLength},
		{"not a root table", sdt("FACP", make([]byte, 8)), ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseSDT(c.b); !errors.Is(err, c.want) {
				t.Errorf("ParseSDT = %v, want %v", err, c.want)
			}
		})
	}
}

func TestFADTWithoutX_DSDTUsesTheOld32BitField(t *testing.T) {
	// An ACPI 1.0 FADT (116 bytes) naming its DSDT at offset 40: 0xe1000.
	body := make([]byte, 100)
	body[4], body[5], body[6] = 0x00, 0x10, 0x0e
	if a, err := DSDTAddress(sdt("FACP", body)); err != nil || a != 0xe1000 {
		t.Errorf("DSDTAddress = %#x, %v; want 0xe1000", a, err)
	}
	if _, err := DSDTAddress(sdt("FACP", make([]byte, 100))); !errors.Is(err, ErrNoDSDT) {
		t.Errorf("FADT without a DSDT: %v, want ErrNoDSDT", err)
	}
}

func TestTableFunctionsTheKernelCallsDoNotAllocate(t *testing.T) {
	rsdp, xsdt := golden(t, "qemu-7.2-microvm", "RSDP"), golden(t, "qemu-7.2-microvm", "XSDT")
	fadt, madt := golden(t, "qemu-7.2-microvm", "FACP"), golden(t, "qemu-7.2-microvm", "APIC")
	bad := bytes.Clone(madt)
	bad[50]++
	n := testing.AllocsPerRun(10, func() {
		ParseRSDP(rsdp)
		s, _ := ParseSDT(xsdt)
		s.Entry(s.Len() - 1)
		DSDTAddress(fadt)
		ParseMADT(madt)
		ParseMADT(bad)
		PeekHeader(madt)
	})
	if n != 0 {
		t.Errorf("%v allocations per run; the kernel calls these before the Go runtime exists", n)
	}
}
