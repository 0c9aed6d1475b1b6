package kernel

// System calls of govirtio's own, beyond Linux's, for the packages that
// give programs the machine (runtime/irq and the device-access code).
// Their numbers are far above Linux's so that they never collide.
const (
	// SysCrashReport copies the pending crash record (crash.go).
	SysCrashReport = 0x6776
	// SysSelfIPI(vector) raises vector on this CPU, as a device would.
	SysSelfIPI = 0x6777
	// SysMapDevice(phys, size) maps device registers uncached at their
	// physical address; it returns 0 or -errno.
	SysMapDevice = 0x6778
	// SysAPICID returns this CPU's local APIC ID, the destination of MSI
	// messages.
	SysAPICID = 0x6779
)

// Interrupt vectors programs may use (see openDevice).
const (
	// VectorMSIFirst and VectorMSILast bound the vectors for MSI/MSI-X,
	// opened as /dev/irq/N.
	VectorMSIFirst = vectorMSIFirst
	VectorMSILast  = vectorMSILast
)

// sysMapDeviceRange maps [phys, phys+size) for device access. RAM and the
// program's own address space are refused.
func sysMapDeviceRange(phys, size uint64) int64 {
	if size == 0 || size > 1<<32 || phys+size < phys || phys+size > userLow {
		return -eINVAL
	}
	for i := 0; i < boot.nmem; i++ {
		e := boot.memmap[i]
		if e.Type == e820RAM && phys < e.Addr+e.Size && e.Addr < phys+size {
			return -eINVAL
		}
	}
	if err := mapDevice(phys, size); err != nil {
		return -eNOMEM
	}
	return 0
}
