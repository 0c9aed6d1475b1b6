package virtiommio

import "testing"

// FuzzParseDevice: any word either fails with ErrBadDeviceWord or gives a
// window Open can map safely (inside the address space, holding the
// registers, on a line the I/O APICs have).
func FuzzParseDevice(f *testing.F) {
	for _, s := range []string{"512@0xfeb00e00:12", "4K@0xd0000000:5:3", "0x200@4273999360:47", "1G@0:1", "512@0xffffffffffffff00:12", "@:", "512@0x1:1:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDevice(s)
		if err != nil {
			return
		}
		if d.Size < minWindow || d.Size > maxWindow || d.Base+d.Size < d.Base || d.IRQ < 1 || d.IRQ > maxIRQ || d.Base%4 != 0 {
			t.Fatalf("ParseDevice(%q) accepted %+v", s, d)
		}
	})
}
