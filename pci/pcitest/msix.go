package pcitest

import (
	"encoding/binary"
	"sync"

	"github.com/govirtio/govirtio/pci"
)

// MSIXCap returns an MSI-X capability with n table entries, the table at
// tableOff in BAR tableBIR and the pending bit array at pbaOff in BAR
// pbaBIR. Enable and function mask are writable.
func MSIXCap(n int, tableBIR int, tableOff uint32, pbaBIR int, pbaOff uint32) Cap {
	body := make([]byte, 10)
	binary.LittleEndian.PutUint16(body[0:], uint16(n-1))
	binary.LittleEndian.PutUint32(body[2:], tableOff|uint32(tableBIR))
	binary.LittleEndian.PutUint32(body[6:], pbaOff|uint32(pbaBIR))
	return Cap{ID: pci.CapMSIX, Body: body, Writable: []byte{0x00, 0xC0}}
}

// MSICap returns an MSI capability: 64-bit capable or not, with or
// without per-vector masking, asking for 1<<log2Vectors messages.
// Enable, multiple message enable, address, data and mask are writable.
func MSICap(is64, perVectorMask bool, log2Vectors int) Cap {
	ctl := uint16(log2Vectors) << 1
	n := 10 // control, address, data (+pad)
	if is64 {
		ctl |= 1 << 7
		n += 4
	}
	if perVectorMask {
		ctl |= 1 << 8
		n += 8
	}
	body := make([]byte, n)
	binary.LittleEndian.PutUint16(body, ctl)
	w := make([]byte, n)
	w[0] = 0x71 // enable, multiple message enable
	for i := 2; i < n; i++ {
		w[i] = 0xFF
	}
	dataAt := 6
	if is64 {
		dataAt = 10
	}
	w[dataAt+2], w[dataAt+3] = 0, 0 // reserved upper half of the data dword
	if perVectorMask {
		for i := dataAt + 8; i < n; i++ {
			w[i] = 0 // pending bits are read-only
		}
	}
	return Cap{ID: pci.CapMSI, Body: body, Writable: w}
}

// MSIXTable emulates a function's MSI-X table and pending bit array.
// Place Table() and PBA() in the BARs the capability names, then Bind it to
// the function so that Fire can see the enable and mask bits.
type MSIXTable struct {
	// mu guards table and pba.
	mu sync.Mutex
	// table is n 16-byte entries; every entry starts masked (PCI 3.0
	// §6.8.2.9).
	table []byte
	// pba holds one pending bit per entry.
	pba []byte
	// f and capOff locate the capability once bound.
	f      *Function
	capOff uint16
	// delivered counts messages sent to the machine.
	delivered int
}

// NewMSIXTable returns a table of n entries, all masked.
func NewMSIXTable(n int) *MSIXTable {
	t := &MSIXTable{table: make([]byte, 16*n), pba: make([]byte, (n+63)/64*8)}
	for i := 0; i < n; i++ {
		t.table[16*i+12] = 1
	}
	return t
}

// Bind tells the table which function and capability it belongs to.
func (t *MSIXTable) Bind(f *Function, capOff uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f, t.capOff = f, capOff
}

// Table is the Region holding the vector table.
func (t *MSIXTable) Table() Region { return msixTable{t} }

// PBA is the Region holding the pending bit array (read-only).
func (t *MSIXTable) PBA() Region { return msixPBA{t} }

// TableBytes and PBABytes are the sizes of the two regions.
func (t *MSIXTable) TableBytes() uint64 { return uint64(len(t.table)) }

// PBABytes is the size of the pending bit array.
func (t *MSIXTable) PBABytes() uint64 { return uint64(len(t.pba)) }

// Entry returns entry i as the function sees it.
func (t *MSIXTable) Entry(i int) (addr uint64, data uint32, masked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.table[16*i:]
	le := binary.LittleEndian
	return le.Uint64(e), le.Uint32(e[8:]), e[12]&1 != 0
}

// Fire raises vector i: the message goes to the machine (Machine.OnMSI)
// when MSI-X is enabled and neither the function nor the entry is masked;
// otherwise the pending bit is set. It reports whether the message was
// sent.
func (t *MSIXTable) Fire(i int) bool {
	var ctl uint16
	var m *Machine
	if t.f != nil {
		t.f.lock()
		ctl = binary.LittleEndian.Uint16(t.f.cfg[t.capOff+2:])
		m = t.f.machine
		t.f.unlock()
	}
	t.mu.Lock()
	e := t.table[16*i:]
	if ctl&0x8000 == 0 || ctl&0x4000 != 0 || e[12]&1 != 0 || m == nil {
		t.pba[i/8] |= 1 << (i % 8)
		t.mu.Unlock()
		return false
	}
	addr, data := binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint32(e[8:])
	t.delivered++
	t.mu.Unlock()
	m.mu.Lock()
	fn := m.msi
	m.mu.Unlock()
	if fn != nil {
		fn(addr, data)
	}
	return true
}

// msixTable is the Region of the vector table.
type msixTable struct{ t *MSIXTable }

func (r msixTable) Read(off uint64, width int) uint64 {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	if off+uint64(width) > uint64(len(r.t.table)) {
		return ^uint64(0) >> (64 - 8*width)
	}
	return getLE(r.t.table[off:], width)
}

func (r msixTable) Write(off uint64, width int, v uint64) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	if off+uint64(width) > uint64(len(r.t.table)) {
		return
	}
	putLE(r.t.table[off:], width, v)
}

// msixPBA is the Region of the pending bit array; writes are ignored.
type msixPBA struct{ t *MSIXTable }

func (r msixPBA) Read(off uint64, width int) uint64 {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	if off+uint64(width) > uint64(len(r.t.pba)) {
		return ^uint64(0) >> (64 - 8*width)
	}
	return getLE(r.t.pba[off:], width)
}

func (r msixPBA) Write(uint64, int, uint64) {}
