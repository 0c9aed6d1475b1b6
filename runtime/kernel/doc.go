// Package kernel is the bare-metal runtime's kernel: it boots a Go
// program built for GOOS=linux GOARCH=amd64 under QEMU's PVH entry and
// plays the part of Linux under it, so that the unmodified Go runtime
// (goroutines, the garbage collector, timers, the network poller) runs in
// ring 0 on the bare machine. A program links it in with a blank import:
//
//	import _ "github.com/govirtio/govirtio/runtime/kernel"
//
// and becomes a bootable image with cmd/mkimage (go run ./cmd/mkimage -o
// app.img ./app adds the import itself, builds with -ldflags "-E
// _rt0_pvh" and adds the PVH note).
//
// # Boot
//
// _rt0_pvh (boot_amd64.s) starts in 32-bit protected mode, checks the PVH
// memory map against the RAM the kernel needs (see below), identity-maps
// the first 4 GiB, enters long mode, enables SSE/XSAVE/AVX and calls kmain
// on a boot stack. kmain reads the PVH start_info (memory map, command
// line) and copies the ACPI tables the RSDP leads to (acpi.go: the MADT
// says which I/O APICs there are; programs read the copies with
// ACPITable), builds the real page tables, the GDT/TSS/IDT, the SYSCALL entry,
// the LAPIC and its timer, then starts the Go runtime's own
// _rt0_amd64_linux as the first thread, with a Linux initial stack (argc,
// argv from the command line, envp, auxv).
//
// # Traps
//
// Every entry (SYSCALL, exception, interrupt) builds a Frame on a kernel
// stack, saves the extended FPU state, switches FS to the kernel's TLS
// (whose g is a fake, pointer-free g covering the kernel stacks) and calls
// trap. The kernel runs to completion with interrupts off; it never blocks
// on its own stack: a blocking system call parks the thread and trap
// returns into another thread (or the idle thread). A thread a device
// interrupt wakes runs as soon as that trap returns, ahead of the thread
// it interrupted, and the idle thread never keeps the CPU from a runnable
// one, so a packet never waits for the next timer tick. Kernel Go code must
// not allocate or store Go pointers into memory (no write barriers): its
// state is fixed arrays of pointer-free structs.
//
// # Memory
//
// The image runs identity-mapped at its link addresses; RAM and the device
// registers in use are reached through a direct map at DirectMapBase+phys
// (page tables, DMA memory, registers); the program's mmap regions live in
// [userLow, userHigh) and are backed on demand, a zeroed frame per page on
// first touch. The image's bss pages still zero at boot are given back and
// backed on demand too (Go 1.26 links 32 MiB of bss into programs that use
// crypto/rand). Page 0 and everything else are unmapped, so nil and wild
// pointers fault.
//
// Until releaseZeroBSS, though, the kernel's own variables (page tables,
// stacks, the thread table, the frame bitmap...) must be in RAM, and the
// image's file-backed data too (QEMU drops what lies beyond RAM). The
// frame bitmap is the last of them in the image (the linker orders data by
// size), so _rt0_pvh, before it writes anything, compares the top of RAM
// in the PVH memory map with the end of the bitmap's used part; with too
// little it prints "kernel: this image needs at least N MiB of RAM; the
// machine has M MiB" (N rounded up, M to a hundredth) on COM1 and exits
// with status 3. It runs in 32-bit mode from the image's text alone (the
// message is in text too: the data may be past RAM).
//
// A fault taken inside the kernel (trapDepth 2) is either the first touch
// of such a bss page, handled in place with the kernel's extended state
// kept in nestedXsave, or a kernel bug: the kernel prints the registers and
// code bytes and stops the machine. Exceptions from the program are moved
// from the fault stack to the trap stack on entry so that a nested fault
// finds the fault stack free.
//
// # System calls
//
// See syscall.go for the table: the Linux system calls Go 1.26 makes,
// with real semantics (demand-paged mmap, futex, clone threads with
// preemptive scheduling, epoll and eventfd, signals with Linux frames).
// Unknown calls return -ENOSYS and are named once on the console.
//
// # Files
//
// A read-only file tree is packed into the image (fs.go, in
// runtime/fsimage's format): the standard /etc files, the CA roots and the
// user's files when the image comes from cmd/mkimage's build mode, which
// swaps fs_files.go's embedded files.gvfs for its own tree through go
// build -overlay. The tree's bytes stay in the image's read-only data; the
// kernel refers to nodes by index and copies from the image straight to
// the program's buffers, so it keeps no pointers and allocates nothing.
// open/openat, read, pread64, lseek, fstat, newfstatat (AT_EMPTY_PATH
// included), getdents64, readlink, access, chdir and getcwd behave as on
// a Linux read-only mount (EROFS for writing or creating, ENOTDIR, EISDIR,
// ENOENT...); the working directory starts at the root. /etc/resolv.conf
// and /etc/hosts are the kernel's own: they start from the command line
// (dns=, ip=) and package network replaces them after a DHCP lease with
// SetNameServers and SetHostAddresses (fs_api.go).
//
// The descriptor table (fdtable.go) holds 65536 descriptors (the
// RLIMIT_NOFILE it reports) in chunks of one frame each, taken from the
// frame allocator when a descriptor in their range is first opened: an
// image with a few files pays one frame. epoll (epoll.go) keeps a ready
// list per instance, fed by the files' events, so that epoll_wait costs
// what it reports, not what it watches; registrations come from a pool
// that grows the same way.
//
// # Sockets
//
// Socket system calls have Linux's semantics and are backed by the network
// stack the program runs (package network's gVisor stack, which registers
// itself with ServeSockets when it starts). The kernel cannot call that
// stack: kernel code runs with interrupts off on a kernel stack, and the
// stack is Go code that allocates and blocks. So the work is split
// (socket.go, sockserve.go):
//
//   - The kernel owns the descriptors, each socket's readiness (the
//     epoll bits, fed to epoll like any file's) and its addresses, checks
//     every pointer the program passes, and hands each call to the serve
//     loop: a goroutine of the program, blocked in SysSocketServe, that
//     receives the call in its buffer, runs it on the stack (SocketStack,
//     Socket) and answers with its next SysSocketServe. The calling thread
//     is parked meanwhile (one call slot per thread; signals wait for the
//     answer). The stack's waiter callbacks report events with
//     SysSocketReady; reports carry a version taken before the state is
//     read, so that a late, older report never hides a newer event.
//   - With one CPU (sched_getaffinity reports one, so GOMAXPROCS=1) a
//     thread parked in a system call keeps its P; the serve goroutine
//     gets it without waiting for sysmon because the serve thread is
//     itself parked in a system call, entered with that P: when the kernel
//     wakes it, Go's exitsyscall takes the P back from the caller, which
//     is in a system call. The answer wakes the caller before the serve
//     thread gets more work, and the caller takes the P back the same way.
//     So the P follows the work at each hand-off, two system calls and two
//     thread switches per socket call, and the serve thread never waits
//     for calls holding the P once the first call has come (the kernel
//     counts the waits that did not follow an answer: SocketServeIdle).
//     There is one serve loop for that reason: a second would enter its
//     wait through the scheduler, holding the P with no caller to take
//     it back until sysmon does.
//   - Each call waiting for the serve loop holds a thread, and the Go
//     runtime makes a new thread each time sysmon takes the P from one of
//     them, so a burst of calls (a server answering thousands of
//     connections at once) would make a thread per call. So at most
//     eight calls wait: past that, a non-blocking read, write or accept
//     fails with EAGAIN at once and its socket is woken (an epoll event)
//     once the queue has drained; and close(2) never waits: the socket
//     goes to a close queue that a closer goroutine reads through the
//     netpoller (SocketCallsDeferred counts the refused calls). Calls that
//     cannot fail so (connect, bind, the options) still take a thread
//     each in a burst (200 goroutines dialing at once make about as many
//     threads): the thread table holds 511, each XSAVE area a frame
//     taken on the slot's first use.
//   - A non-blocking call that can only get EAGAIN by the readiness the
//     kernel holds (the last read of a read loop, an accept with nothing
//     queued) is answered by the kernel alone (wouldBlock): the mask is
//     never behind an event the stack reported, and a later event is the
//     edge the netpoller waits for (SocketCallsWouldBlock counts them).
//   - Go's CPU profiler samples a thread only once it has scheduled a
//     goroutine since profiling began, which the serve loop, always
//     running, never does: while ITIMER_PROF is armed and the serve
//     thread has no timer of its own, its calls carry Resched and it
//     passes through the scheduler once.
//   - A call sees every close made before it: the kernel tells the serve
//     loop how many closes wait in the close queue when it hands a call
//     over, and the loop performs them first, so that a port closed is
//     free and a listener closed refuses, as after close(2) on Linux.
//   - Go's netpoller is edge-triggered and waits for an event after
//     EAGAIN; every event the stack reports wakes the socket's epoll
//     waiters (as every wake-up callback does on Linux), so that no event
//     is lost to a readiness bit another call left set.
//   - socket(2), getsockname(2) and getpeername(2) are raw system calls
//     in Go's syscall package: the thread keeps its P without entering the
//     scheduler's system-call state, so nothing could answer while it
//     waited. The kernel answers them alone: socket opens the descriptor
//     and the serve loop makes the stack's socket at its first call; the
//     addresses come from what the serve loop reported with its last
//     answer on the socket (after bind, listen, connect, accept,
//     getsockopt).
//   - Blocking sockets (without SOCK_NONBLOCK) work too: a call the stack
//     answers with EAGAIN waits in the kernel for the readiness it needs
//     and goes again; a blocking connect waits for the outcome. Go's net
//     package uses non-blocking sockets and an edge-triggered epoll.
//
// Without a stack serving (no network), socket(2) fails with EAFNOSUPPORT.
// The kernel counts its socket calls, the answers and events it dropped as
// stale, and the sockets refused (Stats).
//
// Other designs were weighed. Running the stack's code in the calling
// thread from the kernel is impossible (no Go heap in the kernel). A
// serve goroutine parked in the Go poller instead of the kernel leaves
// the P with the parked caller until sysmon takes it (20 us to 10 ms, 10 ms
// once idle). Reporting more CPUs than there are would let the serve loop
// run on another P, at the price of the Go scheduler spinning and
// balancing work across Ps that share one CPU.
//
// # CPU time
//
// Each trap charges the time since the last one to the thread that was
// running, which gives the CPU-time clocks and the timers on them
// (timer_create on CLOCK_THREAD_CPUTIME_ID, setitimer ITIMER_PROF) that
// Go's CPU profiler uses: a timer tick that finds an expiry queues SIGPROF
// on the interrupted context, so runtime/pprof and net/http/pprof work.
// See cputimer.go.
//
// # Clock
//
// The TSC is the clock. Its rate comes at boot from the first source the
// machine has (time.go): CPUID leaf 0x15 or the hypervisor's 0x40000010;
// else a measurement against the HPET (pc, q35); else against the PIT,
// whose windows a wrap spoilt are measured again; else against the RTC's
// periodic flag
// (QEMU's microvm with pit=off, where TCG's CPU states no frequency); else
// CPUID 0x16's nominal base frequency. The console says which ("kernel:
// TSC N MHz from ..."). The LAPIC timer is calibrated against the TSC.
// Measurements pair reads of both clocks. The program reads
// it without a system call through a vDSO (vdso.go): AT_SYSINFO_EHDR
// points at a minimal ELF image exporting __vdso_clock_gettime, which Go's
// runtime uses for time.Now and its timers.
package kernel
