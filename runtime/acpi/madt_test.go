package acpi

import (
	"errors"
	"testing"
)

func TestQEMUMicrovmMADTHasASecondIOAPICForGSI24Up(t *testing.T) {
	m, err := ParseMADT(golden(t, "qemu-7.2-microvm", "APIC"))
	if err != nil {
		t.Fatal(err)
	}
	want := []IOAPIC{{ID: 0, Address: 0xfec00000, GSIBase: 0}, {ID: 1, Address: 0xfec10000, GSIBase: 24}}
	if m.NumIOAPICs != 2 || m.IOAPICs[0] != want[0] || m.IOAPICs[1] != want[1] {
		t.Errorf("I/O APICs %v, want %v", m.IOAPICs[:m.NumIOAPICs], want)
	}
	if m.LocalAPIC != 0xfee00000 || m.NumOverrides != 0 || m.Dropped != 0 {
		t.Errorf("MADT %+v", m)
	}
}

func TestQEMUQ35MADTMovesTheTimerToGSI2AndPCILinesToLevel(t *testing.T) {
	m, err := ParseMADT(golden(t, "qemu-7.2-q35", "APIC"))
	if err != nil {
		t.Fatal(err)
	}
	if m.NumIOAPICs != 1 || m.IOAPICs[0] != (IOAPIC{Address: 0xfec00000}) {
		t.Errorf("I/O APICs %v", m.IOAPICs[:m.NumIOAPICs])
	}
	if m.NumOverrides != 5 {
		t.Fatalf("%d overrides, want 5: %v", m.NumOverrides, m.Overrides[:m.NumOverrides])
	}
	if o := m.Overrides[0]; o.Source != 0 || o.GSI != 2 || o.Level() || o.ActiveLow() {
		t.Errorf("first override %+v, want IRQ 0 on GSI 2, as the bus says", o)
	}
	for _, o := range m.Overrides[1:m.NumOverrides] {
		if uint32(o.Source) != o.GSI || !o.Level() || o.ActiveLow() {
			t.Errorf("override %+v, want IRQ n on GSI n, level, active high", o)
		}
	}
}

func TestMADTEntryLengthsAreCheckedAgainstTheTable(t *testing.T) {
	ioapic := []byte{madtIOAPIC, madtIOAPICLen, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0}
	head := []byte{0, 0, 0xe0, 0xfe, 1, 0, 0, 0}
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"entry of length 0", cat(head, []byte{0x7f, 0, 0, 0}), ErrMADTEntry},
		{"entry running past the table", cat(head, []byte{0x7f, 8, 0, 0}), ErrMADTEntry},
		{"lone byte after the last entry", cat(head, ioapic, []byte{1}), ErrMADTEntry},
		{"I/O APIC entry shorter than 12 bytes", cat(head, ioapic[:10:10]), ErrMADTEntry},
		{"override shorter than 10 bytes", cat(head, []byte{madtOverride, 8, 0, 0, 2, 0, 0, 0}), ErrMADTEntry},
		{"table shorter than its fixed fields", head[:4], ErrLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if m, err := ParseMADT(sdt("APIC", c.body)); !errors.Is(err, c.want) {
				t.Errorf("ParseMADT = %+v, %v; want %v", m, err, c.want)
			}
		})
	}
}

func TestMADTWithMoreIOAPICsThanTheArrayCountsTheRest(t *testing.T) {
	body := []byte{0, 0, 0xe0, 0xfe, 1, 0, 0, 0}
	for i := 0; i < MaxIOAPICs+2; i++ {
		body = append(body, madtIOAPIC, madtIOAPICLen, byte(i), 0, 0, 0, byte(i), 0xfe, byte(24*i), 0, 0, 0)
	}
	m, err := ParseMADT(sdt("APIC", body))
	if err != nil || m.NumIOAPICs != MaxIOAPICs || m.Dropped != 2 {
		t.Errorf("ParseMADT = %d I/O APICs, %d dropped, %v; want %d, 2", m.NumIOAPICs, m.Dropped, err, MaxIOAPICs)
	}
}
