package virtiommio

import (
	"errors"
	"testing"
)

// qemuVR23 is how QEMU 7.2's microvm DSDT describes its last transport.
var qemuVR23 = ACPIDevice{Path: `\_SB_.VR23`, Windows: []ACPIWindow{{0xfeb02e00, 0x200}}, Interrupts: []ACPIInterrupt{{GSI: 47, Level: true}}}

func TestACPIDescriptionOfQEMUMicrovmTransportIsADevice(t *testing.T) {
	d, err := DeviceFromACPI(qemuVR23)
	want := Device{Base: 0xfeb02e00, Size: 0x200, IRQ: 47, ID: -1, ACPIPath: `\_SB_.VR23`}
	if err != nil || d != want {
		t.Fatalf("DeviceFromACPI = %+v, %v; want %+v", d, err, want)
	}
	if s := d.String(); s != `mmio 0xfeb02e00+0x200 irq 47 acpi \_SB_.VR23` {
		t.Errorf("String() = %q", s)
	}
}

func TestACPIDescriptionThatIsNotOneLevelLineAndOneWindowIsRefused(t *testing.T) {
	w, irq := qemuVR23.Windows[0], qemuVR23.Interrupts[0]
	cases := []struct {
		name string
		a    ACPIDevice
	}{
		{"no window", ACPIDevice{Interrupts: []ACPIInterrupt{irq}}},
		{"two windows", ACPIDevice{Windows: []ACPIWindow{w, w}, Interrupts: []ACPIInterrupt{irq}}},
		{"no interrupt", ACPIDevice{Windows: []ACPIWindow{w}}},
		{"edge-triggered line", ACPIDevice{Windows: []ACPIWindow{w}, Interrupts: []ACPIInterrupt{{GSI: 47}}}},
		{"active-low line", ACPIDevice{Windows: []ACPIWindow{w}, Interrupts: []ACPIInterrupt{{GSI: 47, Level: true, ActiveLow: true}}}},
		{"GSI beyond two I/O APICs", ACPIDevice{Windows: []ACPIWindow{w}, Interrupts: []ACPIInterrupt{{GSI: 48, Level: true}}}},
		{"GSI 0", ACPIDevice{Windows: []ACPIWindow{w}, Interrupts: []ACPIInterrupt{{GSI: 0, Level: true}}}},
		{"window larger than a page", ACPIDevice{Windows: []ACPIWindow{{0xfeb00000, 0x2000}}, Interrupts: []ACPIInterrupt{irq}}},
		{"window too small for the registers", ACPIDevice{Windows: []ACPIWindow{{0xfeb00000, 0x40}}, Interrupts: []ACPIInterrupt{irq}}},
		{"window wrapping the address space", ACPIDevice{Windows: []ACPIWindow{{^uint64(0) - 0xff, 0x200}}, Interrupts: []ACPIInterrupt{irq}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d, err := DeviceFromACPI(c.a); !errors.Is(err, ErrBadACPIDevice) {
				t.Errorf("DeviceFromACPI = %+v, %v; want ErrBadACPIDevice", d, err)
			}
		})
	}
}
