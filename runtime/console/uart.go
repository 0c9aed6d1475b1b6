package console

import (
	"strconv"

	"github.com/govirtio/govirtio/runtime/cpu"
)

// COM1 registers (16550 datasheet), as offsets from the base port.
const (
	com1       = 0x3f8
	regData    = 0 // transmit holding / receive buffer; divisor low with DLAB
	regIER     = 1 // interrupt enable; divisor high with DLAB
	regFCR     = 2 // FIFO control
	regLCR     = 3 // line control
	regMCR     = 4 // modem control
	regLSR     = 5 // line status
	lsrTHRE    = 0x20
	lcrDLAB    = 0x80
	lcr8N1     = 0x03
	fcrEnable  = 0xc7 // enable and clear FIFOs, 14-byte threshold
	mcrDTRRTS  = 0x0b
	divisor115 = 1 // 115200 baud
)

// Init programs COM1 for 115200 baud, 8N1, FIFOs on, interrupts off.
func Init() {
	cpu.Out8(com1+regIER, 0)
	cpu.Out8(com1+regLCR, lcrDLAB)
	cpu.Out8(com1+regData, divisor115)
	cpu.Out8(com1+regIER, 0)
	cpu.Out8(com1+regLCR, lcr8N1)
	cpu.Out8(com1+regFCR, fcrEnable)
	cpu.Out8(com1+regMCR, mcrDTRRTS)
}

// PutByte writes one byte, waiting for room in the transmitter.
func PutByte(b byte) {
	for i := 0; i < 1<<20 && cpu.In8(com1+regLSR)&lsrTHRE == 0; i++ {
		cpu.Pause()
	}
	cpu.Out8(com1+regData, b)
}

// Write writes p, turning "\n" into "\r\n" for terminals.
func Write(p []byte) {
	for _, b := range p {
		if b == '\n' {
			PutByte('\r')
		}
		PutByte(b)
	}
}

// Print writes s.
func Print(s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			PutByte('\r')
		}
		PutByte(s[i])
	}
}

// PrintHex writes v as 0x followed by 16 hex digits.
func PrintHex(v uint64) {
	const digits = "0123456789abcdef"
	PutByte('0')
	PutByte('x')
	for shift := 60; shift >= 0; shift -= 4 {
		PutByte(digits[(v>>uint(shift))&15])
	}
}

// PrintDec writes v in decimal.
func PrintDec(v uint64) {
	var buf [20]byte // room enough: AppendUint does not allocate
	Write(strconv.AppendUint(buf[:0], v, 10))
}
