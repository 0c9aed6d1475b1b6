package network

import (
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/govirtio/govirtio/driver/virtiommio"
)

func TestMicrovmDSDTGivesItsVirtioMMIOTransports(t *testing.T) {
	dsdt, err := os.ReadFile("../runtime/acpi/testdata/qemu-7.2-microvm/DSDT.bin")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := mmioFromTable(dsdt)
	want := []virtiommio.Device{
		{Base: 0xfeb02e00, Size: 0x200, IRQ: 47, ID: -1, ACPIPath: `\_SB_.VR23`},
		{Base: 0xfeb02c00, Size: 0x200, IRQ: 46, ID: -1, ACPIPath: `\_SB_.VR22`},
	}
	if err != nil || !reflect.DeepEqual(devs, want) {
		t.Errorf("mmioFromTable = %+v, %v; want %+v", devs, err, want)
	}
}

func TestQ35DSDTHasNoVirtioMMIOTransport(t *testing.T) {
	dsdt, err := os.ReadFile("../runtime/acpi/testdata/qemu-7.2-q35/DSDT.bin")
	if err != nil {
		t.Fatal(err)
	}
	if devs, err := mmioFromTable(dsdt); err != nil || len(devs) != 0 {
		t.Errorf("mmioFromTable = %+v, %v; want none", devs, err)
	}
}

func TestBadlyDescribedTransportIsReportedAndTheOthersKept(t *testing.T) {
	dsdt, err := os.ReadFile("../runtime/acpi/testdata/qemu-7.2-microvm/DSDT.bin")
	if err != nil {
		t.Fatal(err)
	}
	// VR23's interrupt (at 0x17d) moved to GSI 99, checksum fixed.
	if binary.LittleEndian.Uint32(dsdt[0x17d:]) != 47 {
		t.Fatalf("testdata moved: % x", dsdt[0x170:0x180])
	}
	binary.LittleEndian.PutUint32(dsdt[0x17d:], 99)
	dsdt[9] = 0
	var s byte
	for _, c := range dsdt {
		s += c
	}
	dsdt[9] = -s
	devs, err := mmioFromTable(dsdt)
	if !errors.Is(err, virtiommio.ErrBadACPIDevice) || len(devs) != 1 || devs[0].ACPIPath != `\_SB_.VR22` {
		t.Errorf("mmioFromTable = %+v, %v; want VR22 and ErrBadACPIDevice", devs, err)
	}
}
