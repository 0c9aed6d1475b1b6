#include "textflag.h"

// entry runs in 32-bit protected mode with paging off (PVH), so it is
// written as raw bytes whose 32-bit decoding is what the comments say; the Go
// assembler would pick 64-bit encodings.
TEXT ·entry(SB), NOSPLIT|NOFRAME, $0
	BYTE $0x66; BYTE $0xBA; WORD $0x03F8 // movw $0x3f8, %dx (COM1 data)
	BYTE $0xB0; BYTE $0x6F               // movb $'o', %al
	BYTE $0xEE                           // outb %al, %dx
	BYTE $0xB0; BYTE $0x6B               // movb $'k', %al
	BYTE $0xEE                           // outb %al, %dx
	BYTE $0xB0; BYTE $0x0A               // movb $'\n', %al
	BYTE $0xEE                           // outb %al, %dx
	BYTE $0x66; BYTE $0xBA; WORD $0x00F4 // movw $0xf4, %dx (isa-debug-exit)
	BYTE $0xB8; LONG $3                  // movl $3, %eax (guest status)
	BYTE $0xEF                           // outl %eax, %dx: QEMU exits (3<<1)|1
	BYTE $0xF4                           // hlt
	BYTE $0xEB; BYTE $0xFD               // jmp back to hlt
