package virtiommio

import (
	"errors"
	"testing"
)

func TestDeviceWordsParseAsLinuxReadsThem(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Device
	}{
		{"512@0xfeb00e00:12", Device{Base: 0xfeb00e00, Size: 512, IRQ: 12, ID: -1}},
		{"4K@0xd0000000:5", Device{Base: 0xd0000000, Size: 4096, IRQ: 5, ID: -1}},
		{"0x200@4273999360:47:3", Device{Base: 4273999360, Size: 512, IRQ: 47, ID: 3}},
	} {
		got, err := ParseDevice(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestImpossibleDeviceWordsAreErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"512",                       // no base
		"512@0xfeb00e00",            // no IRQ
		"@0xfeb00e00:12",            // no size
		"512@:12",                   // no base number
		"512@0xfeb00e00:x",          // IRQ not a number
		"512@0xfeb00e00:0",          // IRQ 0 is the timer
		"512@0xfeb00e00:48",         // beyond two I/O APICs
		"16@0xfeb00e00:12",          // smaller than the registers
		"1M@0xfeb00e00:12",          // larger than any device needs
		"512@0xfffffffffffffff0:12", // wraps
		"512@0xfeb00e01:12",         // misaligned
		"512@0xfeb00e00:12:-1",      // bad ID
		"99999999999999999999G@0:1", // overflows
	} {
		if d, err := ParseDevice(in); !errors.Is(err, ErrBadDeviceWord) {
			t.Errorf("ParseDevice(%q) = %+v, %v; want ErrBadDeviceWord", in, d, err)
		}
	}
}

func TestDevicesComeFromTheirCommandLineWordsOnly(t *testing.T) {
	args := []string{"ip=10.0.2.15/24", "virtio_mmio.device=512@0xfeb00e00:12", "virtio_mmio.device=512@0xfeb00c00:11", "virtio_mmio.device=512@0xfeb00e00:12", "virtio_mmio.devices=junk"}
	devs, err := DevicesFromArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[0].Base != 0xfeb00e00 || devs[1].IRQ != 11 {
		t.Errorf("devices %+v", devs)
	}
	devs, err = DevicesFromArgs([]string{"virtio_mmio.device=bad", "virtio_mmio.device=512@0xfeb00e00:12"})
	if !errors.Is(err, ErrBadDeviceWord) || len(devs) != 1 {
		t.Errorf("a bad word among good ones: %+v, %v", devs, err)
	}
}
