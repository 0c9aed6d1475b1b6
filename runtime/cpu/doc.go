// Package cpu wraps the x86-64 instructions that Go cannot express: port
// I/O, model-specific registers, control registers, CPUID, the time-stamp
// counter, TLB invalidation and halting. Each function is a few
// instructions of assembly in cpu_amd64.s.
//
// Everything here is privileged (it runs in ring 0 on the bare-metal
// runtime); on a hosted Linux process most of these functions fault. Only
// the pure helpers (Features decoding) are usable in host-side tests.
//
// References: Intel SDM Vol. 2 (instructions), Vol. 3 (system programming),
// Vol. 4 (MSRs).
package cpu
