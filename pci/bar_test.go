package pci_test

import (
	"errors"
	"testing"

	"github.com/govirtio/govirtio/pci"
	"github.com/govirtio/govirtio/pci/pcitest"
)

func TestBARsDecodeAndSize(t *testing.T) {
	tests := []struct {
		name string
		bars []pcitest.BAR
		want []pci.BAR
	}{
		{
			name: "I/O BAR",
			bars: []pcitest.BAR{{Kind: pci.BARIO, Size: 0x20, Addr: 0xC040}},
			want: []pci.BAR{{Index: 0, Kind: pci.BARIO, Addr: 0xC040, Size: 0x20}},
		},
		{
			name: "32-bit memory BAR after an unimplemented one",
			bars: []pcitest.BAR{{}, {Kind: pci.BARMem32, Size: 0x1000, Addr: 0xFEBF1000}},
			want: []pci.BAR{{Index: 1, Kind: pci.BARMem32, Addr: 0xFEBF1000, Size: 0x1000}},
		},
		{
			name: "64-bit prefetchable memory BAR above 4 GiB takes two registers",
			bars: []pcitest.BAR{{}, {}, {}, {}, {Kind: pci.BARMem64, Size: 0x4000, Addr: 0x8_0000_0000, Prefetchable: true}},
			want: []pci.BAR{{Index: 4, Kind: pci.BARMem64, Prefetchable: true, Addr: 0x8_0000_0000, Size: 0x4000}},
		},
		{
			name: "64-bit BAR larger than 4 GiB",
			bars: []pcitest.BAR{{Kind: pci.BARMem64, Size: 8 << 30, Addr: 0x40_0000_0000}},
			want: []pci.BAR{{Index: 0, Kind: pci.BARMem64, Addr: 0x40_0000_0000, Size: 8 << 30}},
		},
		{
			name: "unassigned BAR still sized",
			bars: []pcitest.BAR{{Kind: pci.BARMem32, Size: 0x100}},
			want: []pci.BAR{{Index: 0, Kind: pci.BARMem32, Size: 0x100}},
		},
		{
			name: "virtio transitional layout",
			bars: []pcitest.BAR{
				{Kind: pci.BARIO, Size: 0x40, Addr: 0xC000},
				{Kind: pci.BARMem32, Size: 0x1000, Addr: 0xFEBD1000},
				{}, {},
				{Kind: pci.BARMem64, Size: 0x4000, Addr: 0xFE000000, Prefetchable: true},
			},
			want: []pci.BAR{
				{Index: 0, Kind: pci.BARIO, Addr: 0xC000, Size: 0x40},
				{Index: 1, Kind: pci.BARMem32, Addr: 0xFEBD1000, Size: 0x1000},
				{Index: 4, Kind: pci.BARMem64, Prefetchable: true, Addr: 0xFE000000, Size: 0x4000},
			},
		},
	}
	for _, tt := range tests {
		for _, via := range []string{"direct", "mechanism1"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				m := pcitest.NewMachine()
				var cs pci.ConfigSpace = m
				if via == "mechanism1" {
					cs = pci.NewMechanism1(m)
				}
				const cmd = pci.CommandIO | pci.CommandMemory | pci.CommandBusMaster
				f := m.AddSpec(addr(0, 1, 0), pcitest.Spec{VendorID: 1, DeviceID: 2, BARs: tt.bars, Command: cmd})
				d, err := pci.Open(cs, addr(0, 1, 0))
				if err != nil {
					t.Fatal(err)
				}
				before := [6]uint32{}
				for i := range before {
					before[i] = f.Peek32(uint16(0x10 + 4*i))
				}
				got, err := d.BARs()
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("BARs = %+v, want %+v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("BAR %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
				for i := range before {
					if v := f.Peek32(uint16(0x10 + 4*i)); v != before[i] {
						t.Errorf("BAR register %d = %#x after sizing, was %#x", i, v, before[i])
					}
				}
				if c := d.Command(); c != cmd {
					t.Errorf("command = %#x after sizing, want %#x restored", c, cmd)
				}
				if n := f.SizedWhileDecoding(); n != 0 {
					t.Errorf("%d BAR sizing writes with decoding on", n)
				}
			})
		}
	}
}

func TestBARBadData(t *testing.T) {
	tests := []struct {
		name  string
		index int
		// mask, flags and value override BAR register index (and index+1
		// with hiMask/hiValue when hi is set).
		mask, flags, value uint32
		hi                 bool
		hiMask, hiValue    uint32
		bridge             bool
		want               error
	}{
		{name: "reserved memory type", mask: 0xFFFFF000, flags: 3 << 1, value: 0xFEB00000, want: pci.ErrBadBAR},
		{name: "non power-of-two size", mask: 0xFFFF5000, value: 0xFEB00000, want: pci.ErrBadBAR},
		{name: "I/O BAR past the 64 KiB port space", mask: 0xFFFFFF00, flags: 1, value: 0x10000, want: pci.ErrBadBAR},
		{name: "64-bit BAR past the physical address space", mask: 0xFFFFF000, flags: 2 << 1, value: 0, hi: true, hiMask: 0xFFFFFFFF, hiValue: 0xFFF00000, want: pci.ErrBadBAR},
		{name: "64-bit BAR in the last register", index: 5, mask: 0xFFFFF000, flags: 2 << 1, value: 0xFE000000, want: pci.ErrBadBAR},
		{name: "64-bit BAR in a bridge's last register", index: 1, bridge: true, mask: 0xFFFFF000, flags: 2 << 1, want: pci.ErrBadBAR},
		{name: "register reads all ones", mask: 0xFFFFFFFF, value: 0xFFFFFFFF, want: pci.ErrAllOnes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pcitest.NewMachine()
			s := pcitest.Spec{VendorID: 1, DeviceID: 2}
			if tt.bridge {
				s = bridge(0, 1, 1)
			}
			f := m.AddSpec(addr(0, 1, 0), s)
			f.SetBARRegister(tt.index, tt.mask, tt.flags, tt.value)
			if tt.hi {
				f.SetBARRegister(tt.index+1, tt.hiMask, 0, tt.hiValue)
			}
			d, err := pci.Open(m, addr(0, 1, 0))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.BAR(tt.index); !errors.Is(err, tt.want) {
				t.Fatalf("BAR(%d) err = %v, want %v", tt.index, err, tt.want)
			}
			if _, err := d.BARs(); !errors.Is(err, tt.want) {
				t.Fatalf("BARs err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBARIndexOutOfRange(t *testing.T) {
	m := pcitest.NewMachine()
	m.AddSpec(addr(0, 1, 0), bridge(0, 1, 1))
	d, _ := pci.Open(m, addr(0, 1, 0))
	for _, i := range []int{-1, 2, 6} {
		if _, err := d.BAR(i); !errors.Is(err, pci.ErrOutOfRange) {
			t.Errorf("bridge BAR(%d) err = %v, want ErrOutOfRange", i, err)
		}
	}
}

func TestMapBAR(t *testing.T) {
	mem := pcitest.NewMemory(0x1000)
	io := pcitest.NewMemory(0x20)
	m := pcitest.NewMachine()
	m.AddSpec(addr(0, 1, 0), pcitest.Spec{VendorID: 1, DeviceID: 2, Command: pci.CommandIO | pci.CommandMemory,
		BARs: []pcitest.BAR{
			{Kind: pci.BARIO, Size: 0x20, Addr: 0xC000, Region: io},
			{Kind: pci.BARMem32, Size: 0x1000, Addr: 0xFEB00000, Region: mem},
			{Kind: pci.BARMem32, Size: 0x1000},
		}})
	d, _ := pci.Open(m, addr(0, 1, 0))

	r, err := d.MapBAR(1, 0x100, 0x10, m, m)
	if err != nil {
		t.Fatal(err)
	}
	r.Write32(4, 0xDEADBEEF)
	r.Write64(8, 0x0102030405060708)
	if got := mem.Read(0x104, 4); got != 0xDEADBEEF {
		t.Errorf("memory BAR write landed as %#x", got)
	}
	if got := r.Read64(8); got != 0x0102030405060708 {
		t.Errorf("Read64 = %#x", got)
	}

	p, err := d.MapBAR(0, 0x10, 0x10, m, m)
	if err != nil {
		t.Fatal(err)
	}
	p.Write16(2, 0xBEEF)
	p.Write64(8, 0x1122334455667788)
	if got := io.Read(0x12, 2); got != 0xBEEF {
		t.Errorf("I/O BAR write landed as %#x", got)
	}
	if got := p.Read64(8); got != 0x1122334455667788 {
		t.Errorf("I/O Read64 = %#x", got)
	}
	if got := p.Read8(3); got != 0xBE {
		t.Errorf("I/O Read8 = %#x", got)
	}

	for _, tc := range []struct {
		name   string
		i      int
		off, n uint64
		want   error
	}{
		{"range past the BAR", 1, 0xFF0, 0x20, pci.ErrOutOfRange},
		{"range wrapping around", 1, ^uint64(0), 2, pci.ErrOutOfRange},
		{"unassigned BAR", 2, 0, 0x10, pci.ErrBARUnassigned},
		{"unimplemented BAR", 3, 0, 0x10, pci.ErrOutOfRange},
	} {
		if _, err := d.MapBAR(tc.i, tc.off, tc.n, m, m); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if f := m.Faults(); len(f) != 0 {
		t.Errorf("faults: %q", f)
	}
}

func TestCommandEnables(t *testing.T) {
	m := pcitest.NewMachine()
	f := m.AddSpec(addr(0, 1, 0), pcitest.Spec{VendorID: 1, DeviceID: 2})
	d, _ := pci.Open(m, addr(0, 1, 0))
	d.EnableDecode()
	d.EnableBusMaster()
	if c := f.Peek16(4); c != pci.CommandIO|pci.CommandMemory|pci.CommandBusMaster {
		t.Fatalf("command = %#x", c)
	}
	d.SetINTx(false)
	if f.Peek16(4)&pci.CommandINTxDisable == 0 {
		t.Fatal("INTx not disabled")
	}
	d.SetINTx(true)
	d.Disable(pci.CommandIO)
	if c := f.Peek16(4); c != pci.CommandMemory|pci.CommandBusMaster {
		t.Fatalf("command = %#x", c)
	}
}
