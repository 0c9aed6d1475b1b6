package pci

import (
	"errors"
	"fmt"
)

// Enumerate finds every function on bus 0 and on every bus behind
// PCI-to-PCI bridges, in depth-first order (a bridge comes before the
// devices behind it). It follows the bus numbers firmware assigned and
// does not renumber.
//
// Problems (a bridge whose secondary bus is not above its own bus or is
// reached twice, an unknown header type) are collected into the returned
// error, which joins one wrapped sentinel per problem; the devices found
// are returned in any case. Every bus is scanned at most once, so bad bus
// numbers cannot make it loop.
func Enumerate(cs ConfigSpace) ([]*Device, error) {
	e := enumerator{cs: cs}
	e.scanBus(0)
	return e.devices, errors.Join(e.errs...)
}

// enumerator is the state of one Enumerate call.
type enumerator struct {
	// cs is the configuration space being walked.
	cs ConfigSpace
	// visited marks the buses already scanned.
	visited [256]bool
	// devices collects the functions found.
	devices []*Device
	// errs collects the problems found.
	errs []error
}

func (e *enumerator) scanBus(bus uint8) {
	e.visited[bus] = true
	for dev := uint8(0); dev < maxDevicesPerBus; dev++ {
		if !present(e.cs, Address{Bus: bus, Device: dev}) {
			continue
		}
		d0, err := Open(e.cs, Address{Bus: bus, Device: dev})
		e.add(d0, err)
		if d0 == nil || !d0.MultiFunction {
			continue
		}
		for fn := uint8(1); fn < maxFunctionsPerDev; fn++ {
			a := Address{Bus: bus, Device: dev, Function: fn}
			if !present(e.cs, a) {
				continue
			}
			d, err := Open(e.cs, a)
			e.add(d, err)
		}
	}
}

// present reports whether a function answers at a, without building an
// error for the (common) empty slot.
func present(cs ConfigSpace, a Address) bool {
	v := uint16(cs.Read32(a, offVendorID))
	return v != 0xFFFF && v != 0
}

// add records d (and err, from Open) and descends behind it if it is a
// bridge.
func (e *enumerator) add(d *Device, err error) {
	if d == nil {
		// The function went away between the presence check and Open.
		e.errs = append(e.errs, err)
		return
	}
	if err != nil {
		// An unknown header type: its layout cannot be trusted beyond
		// the identification, so keep it but do not walk it.
		e.errs = append(e.errs, err)
		e.devices = append(e.devices, d)
		return
	}
	e.devices = append(e.devices, d)
	if d.HeaderType != HeaderTypeBridge {
		return
	}
	sec := d.SecondaryBus
	switch {
	case sec == 0xFF && d.SubordinateBus == 0xFF:
		e.errs = append(e.errs, fmt.Errorf("%v: bridge bus numbers read all ones: %w", d.Addr, ErrAllOnes))
	case sec == 0:
		// Firmware did not configure this bridge: nothing is reachable
		// behind it until someone assigns bus numbers.
		e.errs = append(e.errs, fmt.Errorf("%v: bridge has no secondary bus assigned: %w", d.Addr, ErrBadBridge))
	case sec <= d.Addr.Bus:
		e.errs = append(e.errs, fmt.Errorf("%v: secondary bus %d not above bus %d: %w", d.Addr, sec, d.Addr.Bus, ErrBadBridge))
	case e.visited[sec]:
		e.errs = append(e.errs, fmt.Errorf("%v: secondary bus %d already scanned: %w", d.Addr, sec, ErrBadBridge))
	case d.SubordinateBus < sec:
		e.errs = append(e.errs, fmt.Errorf("%v: subordinate bus %d below secondary bus %d: %w", d.Addr, d.SubordinateBus, sec, ErrBadBridge))
	default:
		e.scanBus(sec)
	}
}
