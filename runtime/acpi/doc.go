// Package acpi reads the ACPI tables a VMM gives a guest (ACPI 6.5 §5): the
// Root System Description Pointer, the XSDT or RSDT that lists the other
// tables, the MADT (which I/O APICs the machine has and which GSIs each
// serves), the FADT (where the DSDT is) and, in the DSDT, the devices that
// sit on no bus, such as QEMU microvm's virtio-mmio transports.
//
// # Two users
//
// The kernel walks the tables at boot, before the Go runtime runs and
// before its memory allocator may hand out the pages they live in: it
// copies them, and drives every I/O APIC the MADT lists. For it the table
// functions (ParseRSDP, CheckTable, Entries, ParseMADT, DSDTAddress) do not
// allocate, keep no pointers, and return constant Error values, which need
// no package initialisation. Programs read the copies back through the
// kernel (runtime/machine.ACPITable) and find devices in the DSDT with
// Devices, which allocates like ordinary Go code.
//
// # AML
//
// A DSDT is AML byte code (ACPI 6.5 §20), which in general only an
// interpreter can evaluate. Devices does not interpret it: it walks the
// namespace's declarations (Scope, Device, Name and the objects whose
// extent an encoded length gives: Method, Field, If, Buffer, Package...)
// and reads, in each Device, a _HID (a string or a compressed EISA ID), a
// _UID, a constant _STA and a _CRS resource template (Memory32Fixed,
// Memory32, DWord and QWord memory ranges, IRQ and Extended Interrupt
// descriptors). That is how VMMs describe fixed devices: QEMU's microvm
// declares each virtio-mmio transport as
//
//	Device (VR23) {
//	    Name (_HID, "LNRO0005")
//	    Name (_UID, 23)
//	    Name (_CCA, One)
//	    Name (_CRS, ResourceTemplate () {
//	        Memory32Fixed (ReadWrite, 0xFEB02E00, 0x200)
//	        Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { 47 }
//	    })
//	}
//
// A _CRS computed by a Method cannot be read without an interpreter: such a
// device is returned with CRSMethod set and no resources. An opcode the
// walk does not know ends the walk of the scope it is in (the extent of
// what follows is unknown), not of the table: the enclosing scopes' own
// lengths still bound them, and Scan's Unknown counts what was given up.
//
// Everything is read from outside and checked before use: checksums,
// table lengths against the bytes there are, every encoded length in AML
// and resource templates against its enclosing object; a violation is an
// Error, never a panic or a read past the table.
package acpi
