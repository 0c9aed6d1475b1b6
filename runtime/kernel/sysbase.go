package kernel

import (
	"encoding/binary"

	"github.com/govirtio/govirtio/runtime/console"
	"github.com/govirtio/govirtio/runtime/cpu"
)

// What the system-call handlers share. The handlers themselves live
// beside their area (memory.go, thread.go, time.go, files.go, signal.go,
// futex.go, cputimer.go, process.go, random.go); syscall.go is only the
// table that dispatches to them.

// le is the byte order of everything the program passes in memory.
var le = binary.LittleEndian

// exitQEMU stops the machine with status through the isa-debug-exit device
// (QEMU exits with status*2+1), or halts if there is none.
func exitQEMU(status uint8) {
	cpu.Out8(debugExitPort, status)
	console.Print("kernel: isa-debug-exit missing; halting\n")
	for {
		cpu.Halt()
	}
}
