package virtio

import (
	"errors"
	"fmt"
)

// Errors of the status handshake, matched with errors.Is.
var (
	// ErrFeaturesRejected: the device did not keep FEATURES_OK set after
	// the driver wrote its features: it cannot work with that subset
	// (virtio 1.2 §3.1.1 step 6).
	ErrFeaturesRejected = errors.New("virtio: device rejected the negotiated features")
	// ErrNoVersion1: a modern (non-legacy) transport without
	// VIRTIO_F_VERSION_1 on both sides; no conforming device or driver
	// can use it that way (virtio 1.2 §6.1).
	ErrNoVersion1 = errors.New("virtio: VERSION_1 not negotiated on a modern transport")
	// ErrNeedsReset: the device set DEVICE_NEEDS_RESET.
	ErrNeedsReset = errors.New("virtio: device needs reset")
)

// legacyFeatureMask is the 32 feature bits a legacy interface has.
const legacyFeatureMask uint64 = 0xFFFFFFFF

// Dependency says that Feature may only be accepted together with Requires
// (for example virtio-net's GUEST_ANNOUNCE needs CTRL_VQ, virtio 1.2
// §5.1.3.1). Negotiate drops Feature when any bit of Requires is missing.
type Dependency struct {
	// Feature is the dependent feature bit (or bits).
	Feature uint64
	// Requires is every bit Feature needs.
	Requires uint64
}

// Negotiate runs the first half of device initialization (virtio 1.2
// §3.1.1): reset, ACKNOWLEDGE, DRIVER, then feature negotiation. The
// accepted set is what the device offers, intersected with what the driver
// implements (driverSupports) and what the user allows (userMask), over
// all 64 bits (32 on a legacy transport), minus features whose
// dependencies did not survive. On a modern transport it sets FEATURES_OK
// and checks that the device kept it; on a legacy one there is no such
// step.
//
// The device is left ready for queue setup; call DriverOK once the queues
// are set up. On any error the device is marked FAILED.
func Negotiate(t Transport, driverSupports, userMask uint64, deps ...Dependency) (accepted uint64, err error) {
	if err := t.Reset(); err != nil {
		Fail(t)
		return 0, fmt.Errorf("virtio: negotiate: %w", err)
	}
	t.SetStatus(StatusAcknowledge)
	t.SetStatus(StatusAcknowledge | StatusDriver)

	accepted, err = SelectFeatures(t.DeviceFeatures(), driverSupports, userMask, t.Legacy(), deps...)
	if err != nil {
		Fail(t)
		return 0, fmt.Errorf("virtio: negotiate: %w", err)
	}
	t.SetDriverFeatures(accepted)
	if t.Legacy() {
		return accepted, nil
	}

	t.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK)
	st := t.Status()
	if st&StatusNeedsReset != 0 {
		Fail(t)
		return 0, fmt.Errorf("virtio: negotiate: status %#02x: %w", st, ErrNeedsReset)
	}
	if st&StatusFeaturesOK == 0 {
		Fail(t)
		return 0, fmt.Errorf("virtio: negotiate: features %#x, status %#02x: %w", accepted, st, ErrFeaturesRejected)
	}
	return accepted, nil
}

// SelectFeatures is the feature set Negotiate accepts from a device
// offering offered, with nothing written to the device: offered
// intersected with driverSupports and userMask over all 64 bits (32 on a
// legacy transport, whose one feature register cannot have offered more),
// minus features whose dependencies did not survive. A modern transport
// without VERSION_1 in the result is ErrNoVersion1.
func SelectFeatures(offered, driverSupports, userMask uint64, legacy bool, deps ...Dependency) (uint64, error) {
	if legacy {
		offered &= legacyFeatureMask
	}
	accepted := Intersect(offered, driverSupports&userMask, deps...)
	if !legacy && accepted&FeatureVersion1 == 0 {
		return 0, fmt.Errorf("device offers %#x, driver supports %#x, user mask %#x: %w",
			offered, driverSupports, userMask, ErrNoVersion1)
	}
	return accepted, nil
}

// Intersect returns offered & wanted without the features whose
// dependencies are not all in the result. Dropping one feature can break
// another's dependency, so it repeats until nothing changes.
func Intersect(offered, wanted uint64, deps ...Dependency) uint64 {
	f := offered & wanted
	for changed := true; changed; {
		changed = false
		for _, d := range deps {
			if f&d.Feature != 0 && f&d.Requires != d.Requires {
				f &^= d.Feature
				changed = true
			}
		}
	}
	return f
}

// DriverOK finishes device initialization (virtio 1.2 §3.1.1 step 8): the
// driver is set up and the device may start using its queues. It reports
// an error if the device asks for a reset instead.
func DriverOK(t Transport) error {
	t.SetStatus(t.Status()&^StatusNeedsReset | StatusDriverOK)
	if st := t.Status(); st&StatusNeedsReset != 0 {
		Fail(t)
		return fmt.Errorf("virtio: driver ok: status %#02x: %w", st, ErrNeedsReset)
	}
	return nil
}

// Fail tells the device that the driver gave up on it (FAILED, virtio 1.2
// §2.1). The other status bits are kept: the device may use them to tell
// how far initialization went. DEVICE_NEEDS_RESET is the device's to set,
// so it is not written back.
func Fail(t Transport) {
	t.SetStatus(t.Status()&^StatusNeedsReset | StatusFailed)
}
