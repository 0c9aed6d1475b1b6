package virtio_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/govirtio/govirtio/driver/virtio"
)

// fakeTransport is the status and feature part of a device; the queue and
// config methods are not used by the handshake.
type fakeTransport struct {
	virtio.Transport // nil: calling anything else panics the test

	// legacy makes a legacy interface.
	legacy bool
	// offered is what DeviceFeatures returns.
	offered uint64
	// rejectFeaturesOK makes the device clear FEATURES_OK (it cannot work
	// with the subset written).
	rejectFeaturesOK bool
	// needsReset makes every status read show DEVICE_NEEDS_RESET.
	needsReset bool
	// resetErr is returned by Reset.
	resetErr error

	// status is the device status register.
	status uint8
	// writes are the status values written, in order; a reset is 0.
	writes []uint8
	// driverFeatures is what the driver wrote.
	driverFeatures uint64
	// featuresWritten counts SetDriverFeatures calls.
	featuresWritten int
}

func (f *fakeTransport) Legacy() bool               { return f.legacy }
func (f *fakeTransport) DeviceFeatures() uint64     { return f.offered }
func (f *fakeTransport) SetDriverFeatures(v uint64) { f.driverFeatures = v; f.featuresWritten++ }
func (f *fakeTransport) Status() uint8 {
	if f.needsReset {
		return f.status | virtio.StatusNeedsReset
	}
	return f.status
}
func (f *fakeTransport) SetStatus(s uint8) {
	f.writes = append(f.writes, s)
	if f.rejectFeaturesOK {
		s &^= virtio.StatusFeaturesOK
	}
	f.status = s
}
func (f *fakeTransport) Reset() error {
	f.writes = append(f.writes, 0)
	f.status = 0
	return f.resetErr
}

const (
	ack  = virtio.StatusAcknowledge
	drv  = virtio.StatusDriver
	fok  = virtio.StatusFeaturesOK
	fail = virtio.StatusFailed
	v1   = virtio.FeatureVersion1
)

func TestNegotiate(t *testing.T) {
	// Bits across the whole range, including 31, 32 and 63, which a 32-bit
	// shift or a 24..49 window would lose.
	const (
		b0  = 1 << 0
		b5  = 1 << 5
		b17 = 1 << 17
		b21 = 1 << 21
		b31 = 1 << 31
		b63 = 1 << 63
	)
	tests := []struct {
		name           string
		dev            fakeTransport
		supports, mask uint64
		deps           []virtio.Dependency
		want           uint64
		wantErr        error
		wantWrites     []uint8
	}{
		{
			name:       "modern: all 64 bits intersected, FEATURES_OK checked",
			dev:        fakeTransport{offered: b0 | b5 | b31 | v1 | virtio.FeatureAccessPlatform | b63},
			supports:   b0 | b31 | v1 | b63 | virtio.FeatureRingPacked,
			mask:       ^uint64(0),
			want:       b0 | b31 | v1 | b63,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok},
		},
		{
			name:       "user mask removes a feature both sides have",
			dev:        fakeTransport{offered: b0 | b5 | v1},
			supports:   b0 | b5 | v1,
			mask:       ^uint64(b5),
			want:       b0 | v1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok},
		},
		{
			name:       "feature the device does not offer is never asked for",
			dev:        fakeTransport{offered: v1},
			supports:   b0 | b5 | v1,
			mask:       ^uint64(0),
			want:       v1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok},
		},
		{
			name:       "legacy: 32 bits, no FEATURES_OK step",
			dev:        fakeTransport{legacy: true, offered: b0 | b31 | v1 | b63},
			supports:   ^uint64(0),
			mask:       ^uint64(0),
			want:       b0 | b31,
			wantWrites: []uint8{0, ack, ack | drv},
		},
		{
			name:       "dependency not met drops the dependent feature",
			dev:        fakeTransport{offered: b21 | b5 | v1},
			supports:   b17 | b21 | b5 | v1,
			mask:       ^uint64(0),
			deps:       []virtio.Dependency{{Feature: b21, Requires: b17}},
			want:       b5 | v1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok},
		},
		{
			name:       "chained dependencies dropped to a fixed point",
			dev:        fakeTransport{offered: b0 | b5 | b21 | v1},
			supports:   ^uint64(0),
			mask:       ^uint64(b17),
			deps:       []virtio.Dependency{{Feature: b0, Requires: b5}, {Feature: b5, Requires: b21}, {Feature: b21, Requires: b17}},
			want:       v1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok},
		},
		{
			name:       "dependency met keeps both",
			dev:        fakeTransport{offered: b17 | b21 | v1},
			supports:   ^uint64(0),
			mask:       ^uint64(0),
			deps:       []virtio.Dependency{{Feature: b21, Requires: b17}},
			want:       b17 | b21 | v1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok},
		},
		{
			name:       "modern device without VERSION_1 fails",
			dev:        fakeTransport{offered: b0},
			supports:   ^uint64(0),
			mask:       ^uint64(0),
			wantErr:    virtio.ErrNoVersion1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fail},
		},
		{
			name:       "user mask without VERSION_1 on a modern transport fails",
			dev:        fakeTransport{offered: b0 | v1},
			supports:   ^uint64(0),
			mask:       ^v1,
			wantErr:    virtio.ErrNoVersion1,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fail},
		},
		{
			name:       "device clearing FEATURES_OK fails",
			dev:        fakeTransport{offered: b0 | v1, rejectFeaturesOK: true},
			supports:   ^uint64(0),
			mask:       ^uint64(0),
			wantErr:    virtio.ErrFeaturesRejected,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok, ack | drv | fail},
		},
		{
			name:       "device needing reset fails",
			dev:        fakeTransport{offered: v1, needsReset: true},
			supports:   ^uint64(0),
			mask:       ^uint64(0),
			wantErr:    virtio.ErrNeedsReset,
			wantWrites: []uint8{0, ack, ack | drv, ack | drv | fok, ack | drv | fok | fail},
		},
		{
			name:       "reset that does not complete fails",
			dev:        fakeTransport{offered: v1, resetErr: errors.New("status stuck at 3")},
			supports:   ^uint64(0),
			mask:       ^uint64(0),
			wantErr:    errors.New("any"),
			wantWrites: []uint8{0, fail},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := tt.dev
			got, err := virtio.Negotiate(&dev, tt.supports, tt.mask, tt.deps...)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("err = nil, want %v", tt.wantErr)
			case tt.wantErr != nil && dev.resetErr == nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if got != tt.want || dev.driverFeatures != tt.want || dev.featuresWritten != 1 {
					t.Errorf("accepted %#x, wrote %#x (%d times), want %#x once", got, dev.driverFeatures, dev.featuresWritten, tt.want)
				}
			}
			if !slices.Equal(dev.writes, tt.wantWrites) {
				t.Errorf("status writes %#x, want %#x", dev.writes, tt.wantWrites)
			}
		})
	}
}

func TestDriverOK(t *testing.T) {
	dev := fakeTransport{offered: v1}
	if _, err := virtio.Negotiate(&dev, v1, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if err := virtio.DriverOK(&dev); err != nil {
		t.Fatal(err)
	}
	if want := ack | drv | fok | virtio.StatusDriverOK; dev.status != want {
		t.Fatalf("status %#x, want %#x", dev.status, want)
	}

	dev = fakeTransport{needsReset: true}
	if err := virtio.DriverOK(&dev); !errors.Is(err, virtio.ErrNeedsReset) {
		t.Fatalf("err = %v, want ErrNeedsReset", err)
	}
	if dev.status&fail == 0 {
		t.Fatal("FAILED not set")
	}
}

func TestFailKeepsOtherStatusBits(t *testing.T) {
	dev := fakeTransport{status: ack | drv}
	virtio.Fail(&dev)
	if dev.status != ack|drv|fail {
		t.Fatalf("status %#x", dev.status)
	}
}
