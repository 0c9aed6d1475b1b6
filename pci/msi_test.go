package pci_test

import (
	"errors"
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

func TestMSIProgram(t *testing.T) {
	tests := []struct {
		name      string
		is64, pvm bool
		addr      uint64
		data      uint16
		wantErr   error
		// dataOff and maskOff are where data and mask bits live, relative
		// to the capability.
		dataOff, maskOff uint16
	}{
		{name: "32-bit capability", addr: 0xFEE01000, data: 0x4041, dataOff: 8, maskOff: 12},
		{name: "64-bit capability above 4 GiB", is64: true, addr: 0x1_FEE0_0000, data: 0x22, dataOff: 12, maskOff: 16},
		{name: "64-bit with per-vector masking", is64: true, pvm: true, addr: 0xFEE00000, data: 0x31, dataOff: 12, maskOff: 16},
		{name: "32-bit with per-vector masking", pvm: true, addr: 0xFEE00000, data: 0x31, dataOff: 8, maskOff: 12},
		{name: "address above 4 GiB on a 32-bit capability", addr: 0x1_0000_0000, wantErr: pci.ErrOutOfRange},
		{name: "unaligned address", is64: true, addr: 0xFEE00002, wantErr: pci.ErrOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f, d := capMachine(pcitest.MSICap(tt.is64, tt.pvm, 2))
			msi, err := d.MSI()
			if err != nil {
				t.Fatal(err)
			}
			if msi.Is64Bit() != tt.is64 || msi.Vectors() != 4 {
				t.Fatalf("Is64Bit %v Vectors %d", msi.Is64Bit(), msi.Vectors())
			}
			err = msi.Program(tt.addr, tt.data)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Program err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			c := f.CapOffset(0)
			if msi.Address() != tt.addr || msi.Data() != tt.data || f.Peek16(c+tt.dataOff) != tt.data {
				t.Fatalf("read back %#x/%#x, want %#x/%#x", msi.Address(), msi.Data(), tt.addr, tt.data)
			}
			msi.SetEnabled(true)
			if !msi.Enabled() || d.Command()&pci.CommandINTxDisable == 0 {
				t.Fatalf("enabled %v, command %#x: MSI on must turn INTx off", msi.Enabled(), d.Command())
			}
			if f.Peek16(c+2)&0x70 != 0 {
				t.Fatalf("multiple message enable %#x, want single message", f.Peek16(c+2))
			}
			err = msi.SetMasked(1, true)
			if !tt.pvm {
				if !errors.Is(err, pci.ErrNoCapability) {
					t.Fatalf("SetMasked without per-vector masking: err = %v", err)
				}
				return
			}
			if err != nil || f.Peek32(c+tt.maskOff) != 2 {
				t.Fatalf("mask bits %#x, %v", f.Peek32(c+tt.maskOff), err)
			}
			if err := msi.SetMasked(4, true); !errors.Is(err, pci.ErrOutOfRange) {
				t.Fatalf("SetMasked(4) of 4 vectors: err = %v", err)
			}
			msi.SetEnabled(false)
			if msi.Enabled() {
				t.Fatal("still enabled")
			}
		})
	}
}

// msixMachine is a function with an MSI-X capability of n entries whose
// table is at 0 and PBA at 0x800 of a 64-bit memory BAR 1, plus an I/O BAR
// 0.
func msixMachine(t *testing.T, n int) (*pcitest.Machine, *pcitest.Function, *pci.Device, *pcitest.MSIXTable) {
	t.Helper()
	tbl := pcitest.NewMSIXTable(n)
	m := pcitest.NewMachine()
	f := m.AddSpec(addr(0, 1, 0), pcitest.Spec{
		VendorID: 1, DeviceID: 2, Command: pci.CommandMemory | pci.CommandIO,
		BARs: []pcitest.BAR{
			{Kind: pci.BARIO, Size: 0x40, Addr: 0xC000},
			{Kind: pci.BARMem64, Size: 0x1000, Addr: 0x8_0000_0000, Region: pcitest.Mux{
				{Off: 0, Size: tbl.TableBytes(), Region: tbl.Table()},
				{Off: 0x800, Size: tbl.PBABytes(), Region: tbl.PBA()},
			}},
		},
		Caps: []pcitest.Cap{pcitest.MSIXCap(n, 1, 0, 1, 0x800)},
	})
	tbl.Bind(f, f.CapOffset(0))
	d, err := pci.Open(m, addr(0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	return m, f, d, tbl
}

func TestMSIXProgramAndDeliver(t *testing.T) {
	m, _, d, tbl := msixMachine(t, 3)
	var got [][2]uint64
	m.OnMSI(func(a uint64, data uint32) { got = append(got, [2]uint64{a, uint64(data)}) })

	x, err := d.MSIX()
	if err != nil {
		t.Fatal(err)
	}
	if x.TableSize != 3 || x.TableBIR != 1 || x.TableOffset != 0 || x.PBABIR != 1 || x.PBAOffset != 0x800 {
		t.Fatalf("decoded %+v", x)
	}
	if err := x.SetEntry(0, 0xFEE00000, 0x41, false); !errors.Is(err, pci.ErrOutOfRange) {
		t.Fatalf("SetEntry before Map: err = %v", err)
	}
	if err := x.Map(m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := x.SetEntry(i, 0xFEE00000+uint64(i)<<12, uint32(0x40+i), i == 2); err != nil {
			t.Fatal(err)
		}
	}
	a, data, masked := tbl.Entry(1)
	if a != 0xFEE01000 || data != 0x41 || masked {
		t.Fatalf("entry 1 = %#x %#x masked %v", a, data, masked)
	}
	if a, data, masked, err := x.Entry(2); err != nil || a != 0xFEE02000 || data != 0x42 || !masked {
		t.Fatalf("Entry(2) = %#x %#x %v %v", a, data, masked, err)
	}
	if err := x.SetEntry(3, 0, 0, false); !errors.Is(err, pci.ErrOutOfRange) {
		t.Fatalf("SetEntry(3) of 3: err = %v", err)
	}

	// Not enabled yet: messages are held pending.
	if tbl.Fire(0) {
		t.Fatal("message sent with MSI-X disabled")
	}
	if p, _ := x.Pending(0); !p {
		t.Fatal("pending bit not set")
	}
	x.SetFunctionMask(true)
	x.SetEnabled(true)
	if !x.Enabled() || !x.FunctionMasked() || d.Command()&pci.CommandINTxDisable == 0 {
		t.Fatalf("enabled %v function-masked %v command %#x", x.Enabled(), x.FunctionMasked(), d.Command())
	}
	if tbl.Fire(1) {
		t.Fatal("message sent with the function masked")
	}
	x.SetFunctionMask(false)
	if !tbl.Fire(1) || tbl.Fire(2) {
		t.Fatal("entry 1 must deliver, masked entry 2 must not")
	}
	if err := x.SetMasked(2, false); err != nil {
		t.Fatal(err)
	}
	if !tbl.Fire(2) {
		t.Fatal("unmasked entry 2 did not deliver")
	}
	want := [][2]uint64{{0xFEE01000, 0x41}, {0xFEE02000, 0x42}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("delivered %#x, want %#x", got, want)
	}
}

func TestMSIXBadCapability(t *testing.T) {
	tests := []struct {
		name    string
		cap     pcitest.Cap
		wantDec error // from MSIX()
		wantMap error // from Map()
	}{
		{name: "table BIR 7", cap: pcitest.MSIXCap(4, 7, 0, 1, 0x800), wantDec: pci.ErrBadCapability},
		{name: "PBA BIR 6", cap: pcitest.MSIXCap(4, 1, 0, 6, 0x800), wantDec: pci.ErrBadCapability},
		{name: "table runs past its BAR", cap: pcitest.MSIXCap(4, 1, 0xFF8, 1, 0x800), wantMap: pci.ErrBadCapability},
		{name: "2048 entries do not fit a 4 KiB BAR", cap: pcitest.MSIXCap(2048, 1, 0, 1, 0x800), wantMap: pci.ErrBadCapability},
		{name: "table in an I/O BAR", cap: pcitest.MSIXCap(4, 0, 0, 1, 0x800), wantMap: pci.ErrBadCapability},
		{name: "table in an unimplemented BAR", cap: pcitest.MSIXCap(4, 3, 0, 1, 0x800), wantMap: pci.ErrBadCapability},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pcitest.NewMachine()
			m.AddSpec(addr(0, 1, 0), pcitest.Spec{
				VendorID: 1, DeviceID: 2,
				BARs: []pcitest.BAR{
					{Kind: pci.BARIO, Size: 0x40, Addr: 0xC000},
					{Kind: pci.BARMem32, Size: 0x1000, Addr: 0xFEB00000, Region: pcitest.NewMemory(0x1000)},
				},
				Caps: []pcitest.Cap{tt.cap},
			})
			d, _ := pci.Open(m, addr(0, 1, 0))
			x, err := d.MSIX()
			if !errors.Is(err, tt.wantDec) {
				t.Fatalf("MSIX err = %v, want %v", err, tt.wantDec)
			}
			if err != nil {
				return
			}
			if err := x.Map(m); !errors.Is(err, tt.wantMap) {
				t.Fatalf("Map err = %v, want %v", err, tt.wantMap)
			}
		})
	}
}
