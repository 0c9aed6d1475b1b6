package kernel

import (
	"errors"
	"syscall"

	"github.com/govirtio/govirtio/runtime/acpi"
	"github.com/govirtio/govirtio/runtime/console"
)

// The ACPI tables are read once, at boot, before initMemory: the
// allocator must not hand out the pages they are in before they are
// copied (QEMU's microvm keeps them below 1 MiB, but SeaBIOS on q35 puts
// them at the top of RAM, in memory a VMM may mark as RAM), and until
// initMemory the boot page tables identity-map the first 4 GiB, where the
// VMMs put them. Each table the root table lists, and the DSDT the FADT
// names, is checked (length, checksum) and copied into acpiStore; programs
// read the copies with ACPITable. The MADT's I/O APICs drive ioapic.go.
const (
	acpiStoreSize = 64 << 10 // QEMU 7.2: microvm's tables are 0.9 KiB, q35's 8.8 KiB
	maxACPITables = 16
	acpiMaxPhys   = 4 << 30 // what the boot page tables map
	acpiMaxTable  = 32 << 10
	// Where to look for the RSDP when start_info gives none: the BIOS
	// area, on 16-byte boundaries (ACPI 6.5 §5.2.5.1).
	biosAreaStart = 0xe0000
	biosAreaEnd   = 0x100000
)

// acpiTable is one copied table.
type acpiTable struct {
	sig      [4]byte
	off, len uint32 // where in acpiStore
}

var (
	acpiStore  [acpiStoreSize]byte
	acpiUsed   int
	acpiTables [maxACPITables]acpiTable
	acpiCount  int
	// madt is the MADT as read at boot; madtFound says there was one.
	madt      acpi.MADT
	madtFound bool
)

// Why a table was not copied (constants, as acpi's errors are: this runs
// before package initialisation).
const (
	errACPIAddr  = acpi.Error("table above 4 GiB or in page 0")
	errACPIFull  = acpi.Error("no room left to copy the table")
	errACPILarge = acpi.Error("table larger than 32 KiB")
)

// acpiPhys returns n bytes at physical address p, or false if they are
// not all in the identity-mapped first 4 GiB (page 0 excluded).
func acpiPhys(p uint64, n int) ([]byte, bool) {
	if p < 4096 || p >= acpiMaxPhys || uint64(n) > acpiMaxPhys-p {
		return nil, false
	}
	return physBytes(p, n), true
}

// findRSDP scans the BIOS area for a valid RSDP and returns its address,
// or 0.
func findRSDP() uint64 {
	for p := uint64(biosAreaStart); p < biosAreaEnd; p += 16 {
		b, _ := acpiPhys(p, min(acpi.RSDPSize, int(biosAreaEnd-p)))
		if _, err := acpi.ParseRSDP(b); err == nil {
			return p
		}
	}
	return 0
}

// readACPI copies the tables and reads the MADT. A machine without ACPI
// (QEMU's microvm with acpi=off) has no RSDP, which is not an error: the
// kernel then drives the one I/O APIC at its usual address.
func readACPI() {
	at := boot.rsdp
	if at == 0 {
		at = findRSDP()
	}
	if at == 0 {
		return
	}
	b, ok := acpiPhys(at, acpi.RSDPSize)
	if !ok {
		acpiWarn("RSDP", errACPIAddr)
		return
	}
	rsdp, err := acpi.ParseRSDP(b)
	if err != nil {
		acpiWarn("RSDP", err)
		return
	}
	root, err := copyACPITable(rsdp.Root())
	if err != nil {
		acpiWarn("XSDT/RSDT", err)
		return
	}
	sdt, err := acpi.ParseSDT(root)
	if err != nil {
		acpiWarn("XSDT/RSDT", err)
		return
	}
	for i := 0; i < sdt.Len(); i++ {
		t, err := copyACPITable(sdt.Entry(i))
		if err != nil {
			acpiWarn("a table the root lists", err)
			continue
		}
		switch string(t[:4]) {
		case "FACP":
			a, err := acpi.DSDTAddress(t)
			if err == nil {
				_, err = copyACPITable(a)
			}
			if err != nil {
				acpiWarn("DSDT", err)
			}
		case "APIC":
			if m, err := acpi.ParseMADT(t); err != nil {
				acpiWarn("MADT", err)
			} else if !madtFound {
				madt, madtFound = m, true
			}
		}
	}
}

// copyACPITable checks the table at physical address p and copies it into
// acpiStore, returning the copy.
func copyACPITable(p uint64) ([]byte, error) {
	b, ok := acpiPhys(p, acpi.HeaderSize)
	if !ok {
		return nil, errACPIAddr
	}
	h, err := acpi.PeekHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Length > acpiMaxTable {
		return nil, errACPILarge
	}
	if b, ok = acpiPhys(p, int(h.Length)); !ok {
		return nil, errACPIAddr
	}
	if _, err := acpi.CheckTable(b); err != nil {
		return nil, err
	}
	if acpiCount == maxACPITables || int(h.Length) > len(acpiStore)-acpiUsed {
		return nil, errACPIFull
	}
	c := acpiStore[acpiUsed : acpiUsed+int(h.Length)]
	copy(c, b)
	acpiTables[acpiCount] = acpiTable{sig: h.Signature, off: uint32(acpiUsed), len: h.Length}
	acpiCount++
	acpiUsed += int(h.Length)
	return c, nil
}

// acpiWarn names a table the kernel could not use and why.
func acpiWarn(what string, err error) {
	console.Print("kernel: ACPI: ")
	console.Print(what)
	console.Print(": ")
	if e, ok := err.(acpi.Error); ok {
		console.Print(string(e))
	}
	console.Print("; ignored\n")
}

// sysACPITable copies the index'th copied table with signature sig (four
// ASCII bytes, little-endian) to the program's buffer at buf, up to size
// bytes, and returns the table's length.
func sysACPITable(sig, index, buf, size uint64) int64 {
	for i := 0; i < acpiCount; i++ {
		t := acpiTables[i]
		if uint64(le.Uint32(t.sig[:])) != sig {
			continue
		}
		if index > 0 {
			index--
			continue
		}
		n := min(size, uint64(t.len))
		if !userRange(buf, n, true) {
			return -eFAULT
		}
		copy(userBytes(buf, int(n)), acpiStore[t.off:t.off+uint32(n)])
		return int64(t.len)
	}
	return -eNOENT
}

// ErrNoACPITable reports that the firmware gave no table with that
// signature (or none at all: QEMU's microvm with acpi=off).
var ErrNoACPITable = errors.New("kernel: no such ACPI table")

// ACPITable returns a copy of the index'th ACPI table with signature sig
// ("DSDT", "APIC", "FACP", "SSDT"...) as the firmware gave it, checksum
// checked at boot. It is ordinary Go code, called by the program.
func ACPITable(sig string, index int) ([]byte, error) {
	if len(sig) != 4 || index < 0 {
		return nil, errors.New("kernel: ACPI signatures have four characters")
	}
	s := le.Uint32([]byte(sig))
	for size := 4096; ; {
		b := make([]byte, size)
		n, _, e := syscall.RawSyscall6(SysACPITable, uintptr(s), uintptr(index), uintptr(unsafePointer(&b[0])), uintptr(size), 0, 0)
		switch {
		case e == syscall.ENOENT:
			return nil, ErrNoACPITable
		case e != 0:
			return nil, e
		case int(n) <= size:
			return b[:n], nil
		}
		size = int(n) // larger than guessed: once more with room for it
	}
}
