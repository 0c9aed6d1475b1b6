package acpi

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// The tables under testdata are QEMU 7.2's, saved from guest memory with
// the monitor's pmemsave while a govirtio image ran: qemu-7.2-microvm from
// -M microvm (ACPI on, its default) with two virtio-net-device NICs,
// qemu-7.2-q35 from -M q35 (SeaBIOS, an ACPI 1.0 RSDP and an RSDT).

// golden reads a saved table.
func golden(t testing.TB, machine, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", machine, name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sdt builds a table with a valid header and checksum around body.
func sdt(sig string, body []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	copy(b, sig)
	b[8] = 2
	copy(b[10:], "GOVIRT")
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return fixChecksum(b, 9)
}

// fixChecksum sets the byte at off so that b sums to 0 (after a test
// changed b on purpose, so that only the change is wrong).
func fixChecksum(b []byte, off int) []byte {
	b[off] = 0
	b[off] = -sum(b)
	return b
}

// pkg prefixes body with its PkgLength encoding (which counts itself).
func pkg(body ...[]byte) []byte {
	var all []byte
	for _, p := range body {
		all = append(all, p...)
	}
	n := len(all) + 1
	switch {
	case n <= 0x3f:
		return append([]byte{byte(n)}, all...)
	case n+1 <= 0xfff:
		n++
		return append([]byte{0x40 | byte(n&0xf), byte(n >> 4)}, all...)
	}
	n += 2
	return append([]byte{0x80 | byte(n&0xf), byte(n >> 4), byte(n >> 12)}, all...)
}

// cat joins byte slices.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// AML builders for synthetic definition blocks.
func scope(name string, body ...[]byte) []byte {
	return cat([]byte{opScope}, pkg(cat([]byte(name)), cat(body...)))
}
func device(name string, body ...[]byte) []byte {
	return cat([]byte{opExt, extDevice}, pkg([]byte(name), cat(body...)))
}
func nameStr(name, v string) []byte {
	return cat([]byte{opName}, []byte(name), []byte{opString}, []byte(v), []byte{0})
}
func nameBuf(name string, contents []byte) []byte {
	return cat([]byte{opName}, []byte(name), []byte{opBuffer}, pkg([]byte{opBytePrefix, byte(len(contents))}, contents))
}

// virtioCRS is QEMU microvm's resource template for a transport.
func virtioCRS(base, irq uint32) []byte {
	b := []byte{0x86, 9, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0}
	binary.LittleEndian.PutUint32(b[4:], base)
	e := []byte{0x89, 6, 0, 1, 1, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(e[5:], irq)
	return cat(b, e, []byte{0x79, 0})
}
