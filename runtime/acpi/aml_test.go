package acpi

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestQEMUMicrovmDSDTDeclaresEachVirtioMMIOTransport(t *testing.T) {
	s, err := Devices(golden(t, "qemu-7.2-microvm", "DSDT"))
	if err != nil {
		t.Fatal(err)
	}
	got := s.ByHID("LNRO0005")
	want := []Device{
		{Path: `\_SB_.VR23`, HID: "LNRO0005", UID: "23", Resources: Resources{
			Memory:     []Memory{{Base: 0xfeb02e00, Length: 0x200}},
			Interrupts: []Interrupt{{Number: 47, Level: true}}}},
		{Path: `\_SB_.VR22`, HID: "LNRO0005", UID: "22", Resources: Resources{
			Memory:     []Memory{{Base: 0xfeb02c00, Length: 0x200}},
			Interrupts: []Interrupt{{Number: 46, Level: true}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LNRO0005 devices:\n got %+v\nwant %+v", got, want)
	}
	if s.Unknown != 0 || len(s.Devices) != 7 {
		t.Errorf("%d devices, %d lists given up; want 7 and 0", len(s.Devices), s.Unknown)
	}
	// The others: fw_cfg (a string _HID), COM1 and the RTC (EISA IDs and
	// IRQ descriptors), the generic event device (an OperationRegion, a
	// Field and a Method inside it), the power button.
	com1 := s.ByHID("PNP0501")
	if len(com1) != 1 || com1[0].Path != `\_SB_.COM1` || com1[0].UID != "1" || !reflect.DeepEqual(com1[0].Resources.Interrupts, []Interrupt{{Number: 4, ISA: true}}) {
		t.Errorf("COM1: %+v", com1)
	}
	if ged := s.ByHID("ACPI0013"); len(ged) != 1 || ged[0].UID != "GED" || ged[0].Resources.Interrupts[0] != (Interrupt{Number: 9}) {
		t.Errorf("GED: %+v", ged)
	}
	if fw := s.ByHID("QEMU0002"); len(fw) != 1 || !fw[0].HasStatus || fw[0].Status != 0xb {
		t.Errorf("fw_cfg: %+v", fw)
	}
}

func TestQEMUQ35DSDTIsWalkedWholeAndComputedCRSIsFlagged(t *testing.T) {
	s, err := Devices(golden(t, "qemu-7.2-q35", "DSDT"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Unknown != 0 {
		t.Errorf("%d object lists given up", s.Unknown)
	}
	links := s.ByHID("PNP0C0F")
	methods := 0
	for _, d := range links {
		if d.CRSMethod {
			methods++
		}
	}
	if len(links) != 16 || methods != 8 {
		t.Errorf("%d PCI interrupt links, %d with a _CRS method; want 16 and 8", len(links), methods)
	}
	hpet := s.ByHID("PNP0103")
	if len(hpet) != 1 || !reflect.DeepEqual(hpet[0].Resources.Memory, []Memory{{Base: 0xfed00000, Length: 0x400}}) {
		t.Errorf("HPET: %+v", hpet)
	}
	if kbd := s.ByHID("PNP0303"); len(kbd) != 1 || kbd[0].Path != `\_SB_.PCI0.SF8_.KBD_` {
		t.Errorf("keyboard (nested devices): %+v", kbd)
	}
	if len(s.ByHID("LNRO0005")) != 0 {
		t.Error("q35 has no virtio-mmio transports")
	}
}

func TestDeviceNamesResolveAgainstTheirScope(t *testing.T) {
	dsdt := sdt("DSDT", cat(
		scope(`\_SB_`, device("DEV0", nameStr("_HID", "TEST0001"))),
		scope(`_SB_`, device("^NEXT", nameStr("_HID", "TEST0002"))), // ^ leaves \_SB_ for the root
		device(string([]byte{opDualName})+"_SB_ABCD", nameStr("_HID", "TEST0003")),
	))
	s, err := Devices(dsdt)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, d := range s.Devices {
		paths = append(paths, d.Path)
	}
	if want := []string{`\_SB_.DEV0`, `\NEXT`, `\_SB_.ABCD`}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
}

func TestDeviceWithStatusZeroIsNotPresent(t *testing.T) {
	dsdt := sdt("DSDT", cat(device("GONE", nameStr("_HID", "LNRO0005"), []byte{opName}, []byte("_STA"), []byte{opZero}),
		device("HERE", nameStr("_HID", "LNRO0005"), []byte{opName}, []byte("_STA"), []byte{opBytePrefix, 0x0f})))
	s, err := Devices(dsdt)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ByHID("LNRO0005"); len(got) != 1 || got[0].Path != `\HERE` {
		t.Errorf("present devices %+v, want HERE alone", got)
	}
}

func TestUnknownOpcodeEndsItsScopeOnly(t *testing.T) {
	// 0x70 is Store: an expression the scanner does not evaluate. The
	// device after it in the same scope is lost; the next scope is not.
	dsdt := sdt("DSDT", cat(
		scope(`\_SB_`, []byte{0x70, 0x01, 0x60}, device("LOST", nameStr("_HID", "LNRO0005"))),
		scope(`\_SB_`, device("VR00", nameStr("_HID", "LNRO0005"), nameBuf("_CRS", virtioCRS(0xfeb00000, 24)))),
	))
	s, err := Devices(dsdt)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ByHID("LNRO0005"); len(got) != 1 || got[0].Path != `\_SB_.VR00` || s.Unknown != 1 {
		t.Errorf("devices %+v, %d lists given up; want VR00 and 1", got, s.Unknown)
	}
}

func TestHostileDefinitionBlocksAreRefused(t *testing.T) {
	good := golden(t, "qemu-7.2-microvm", "DSDT")
	// VR23 is the Device at offset 0x13f: 5B 82, PkgLength 42 04.
	const vr23 = 0x13f
	if !bytes.Equal(good[vr23:vr23+8], []byte{0x5b, 0x82, 0x42, 0x04, 'V', 'R', '2', '3'}) {
		t.Fatalf("testdata moved: % x", good[vr23:vr23+8])
	}
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return fixChecksum(b, 9)
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad checksum", func() []byte { b := bytes.Clone(good); b[0x150]++; return b }(), ErrChecksum},
		{"cut short of its length", good[:len(good)-10], ErrShort},
		{"not a definition block", sdt("APIC", nil), ErrSignature},
		{"device length past its scope", mod(func(b []byte) { b[vr23+3] = 0xff }), ErrAML},
		{"PkgLength lead byte with reserved bits", mod(func(b []byte) { b[vr23+2] = 0x72 }), ErrAML},
		{"device name with a bad character", mod(func(b []byte) { b[vr23+4] = '!' }), ErrAML},
		{"scope length past the table", mod(func(b []byte) { b[0x25], b[0x26] = 0x4f, 0xff }), ErrAML},
		{"string without its NUL at the end", sdt("DSDT", cat(device("DEV0"), []byte{opName}, []byte("_HID"), []byte{opString, 'A'})), ErrAML},
		{"name segment count past the table", sdt("DSDT", []byte{opName, opMultiName, 9, 'A', 'B', 'C', 'D'}), ErrAML},
		{"integer past the table", sdt("DSDT", []byte{opName, 'A', 'B', 'C', 'D', opDWordPrefix, 1, 2}), ErrAML},
		{"name without a value", sdt("DSDT", []byte{opName, 'A', 'B', 'C', 'D'}), ErrAML},
		{"buffer without its size, at the end of the table", sdt("DSDT", []byte{opName, 'A', 'B', 'C', 'D', opBuffer, 1}), ErrAML},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if s, err := Devices(c.b); !errors.Is(err, c.want) {
				t.Errorf("Devices = %d devices, %v; want %v", len(s.Devices), err, c.want)
			}
		})
	}
}

func TestBadCRSIsReportedOnItsDeviceAlone(t *testing.T) {
	crs := virtioCRS(0xfeb00000, 24)
	cases := []struct {
		name string
		crs  []byte // the _CRS Name's value
		want error
	}{
		{"resource template without its End Tag", cat([]byte{opBuffer}, pkg([]byte{opBytePrefix, byte(len(crs) - 2)}, crs[:len(crs)-2])), ErrResource},
		{"template cut inside a descriptor", cat([]byte{opBuffer}, pkg([]byte{opBytePrefix, 10}, crs[:10])), ErrResource},
		{"buffer smaller than its initialiser", cat([]byte{opBuffer}, pkg([]byte{opBytePrefix, 4}, crs)), ErrResource},
		{"buffer size not a constant", cat([]byte{opBuffer}, pkg([]byte{0x60}, crs)), ErrResource},
		{"an integer, not a buffer", []byte{opOne}, ErrResource},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsdt := sdt("DSDT", cat(
				device("BAD0", nameStr("_HID", "LNRO0005"), []byte{opName}, []byte("_CRS"), c.crs),
				device("GOOD", nameStr("_HID", "LNRO0005"), nameBuf("_CRS", crs))))
			s, err := Devices(dsdt)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Devices) != 2 || !errors.Is(s.Devices[0].CRSErr, c.want) || s.Devices[1].CRSErr != nil || len(s.Devices[1].Resources.Memory) != 1 {
				t.Errorf("devices %+v; want BAD0 with %v, GOOD read", s.Devices, c.want)
			}
		})
	}
}

func TestEISAIDsDecodeAsTheirText(t *testing.T) {
	for v, want := range map[uint32]string{0x0105d041: "PNP0501", 0x000bd041: "PNP0B00", 0x080ad041: "PNP0A08"} {
		if got := eisaID(v); got != want {
			t.Errorf("eisaID(%#x) = %s, want %s", v, got, want)
		}
	}
}

func FuzzDevices(f *testing.F) {
	f.Add(golden(f, "qemu-7.2-microvm", "DSDT"))
	f.Add(sdt("DSDT", scope(`\_SB_`, device("VR00", nameStr("_HID", "LNRO0005"), nameBuf("_CRS", virtioCRS(0xfeb00000, 24))))))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= HeaderSize {
			b = fixChecksum(b, 9) // past the checksum, into the AML
		}
		s, err := Devices(b)
		if err != nil && len(s.Devices) != 0 {
			t.Fatalf("error %v with %d devices", err, len(s.Devices))
		}
		for _, d := range s.Devices {
			for _, m := range d.Resources.Memory {
				if m.Length == 0 || m.Base+m.Length < m.Base {
					t.Fatalf("window %+v accepted", m)
				}
			}
		}
	})
}
