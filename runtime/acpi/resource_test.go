package acpi

import (
	"errors"
	"reflect"
	"testing"
)

func TestResourceTemplatesReadAsWindowsAndInterrupts(t *testing.T) {
	qword := []byte{0x8a, 43, 0, 0, 0, 0, // memory, flags
		0, 0, 0, 0, 0, 0, 0, 0, // granularity
		0, 0, 0, 0, 0x10, 0, 0, 0, // min 0x10_0000_0000
		0xff, 0xff, 0, 0, 0x10, 0, 0, 0, // max
		0, 0, 0, 0, 0, 0, 0, 0, // translation
		0, 0, 1, 0, 0, 0, 0, 0} // length 0x10000
	cases := []struct {
		name string
		b    []byte
		want Resources
	}{
		{"QEMU microvm's virtio-mmio transport", virtioCRS(0xfeb02e00, 47), Resources{
			Memory: []Memory{{0xfeb02e00, 0x200}}, Interrupts: []Interrupt{{Number: 47, Level: true}}}},
		{"IRQ without its information byte is edge, active high", []byte{0x22, 0x10, 0x00, 0x79, 0}, Resources{
			Interrupts: []Interrupt{{Number: 4, ISA: true}}}},
		{"IRQ with information byte: level, active low, shared", []byte{0x23, 0x00, 0x02, 0x18, 0x79, 0}, Resources{
			Interrupts: []Interrupt{{Number: 9, ISA: true, Level: true, ActiveLow: true, Shared: true}}}},
		{"Extended Interrupt with two lines", []byte{0x89, 10, 0, 0x0d, 2, 5, 0, 0, 0, 6, 0, 0, 0, 0x79, 0}, Resources{
			Interrupts: []Interrupt{{Number: 5, Level: true, ActiveLow: true, Shared: true}, {Number: 6, Level: true, ActiveLow: true, Shared: true}}}},
		{"QWord memory range", append(qword, 0x79, 0), Resources{Memory: []Memory{{0x10_0000_0000, 0x10000}}}},
		{"I/O ports skipped", []byte{0x47, 1, 0xf8, 3, 0xf8, 3, 0, 8, 0x79, 0}, Resources{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseResources(c.b)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseResources = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestTruncatedOrImpossibleResourceTemplatesAreRefused(t *testing.T) {
	crs := virtioCRS(0xfeb02e00, 47)
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no End Tag", crs[:len(crs)-2]},
		{"cut inside Memory32Fixed", crs[:8]},
		{"cut inside a large descriptor's header", crs[:2]},
		{"small descriptor past the end", []byte{0x23, 0, 2}},
		{"Memory32Fixed declared shorter than it is", []byte{0x86, 5, 0, 1, 0, 0, 0, 0, 0x79, 0}},
		{"window of length 0", []byte{0x86, 9, 0, 1, 0, 0, 0xb0, 0xfe, 0, 0, 0, 0, 0x79, 0}},
		{"QWord window wrapping the address space", []byte{0x8a, 43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 1, 0, 0x79, 0}},
		{"Extended Interrupt counting more lines than it holds", []byte{0x89, 6, 0, 1, 3, 47, 0, 0, 0, 0x79, 0}},
		{"Extended Interrupt with no line", []byte{0x89, 2, 0, 1, 0, 0x79, 0}},
		{"IRQ descriptor of one byte", []byte{0x21, 0, 0x79, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r, err := ParseResources(c.b); !errors.Is(err, ErrResource) {
				t.Errorf("ParseResources = %+v, %v; want ErrResource", r, err)
			}
		})
	}
}

func FuzzParseResources(f *testing.F) {
	f.Add(virtioCRS(0xfeb02e00, 47))
	f.Add([]byte{0x23, 0x00, 0x02, 0x18, 0x79, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResources(b)
		if err != nil && (len(r.Memory) != 0 || len(r.Interrupts) != 0) {
			t.Fatalf("error %v with resources %+v", err, r)
		}
	})
}
