// Package mem manages memory for the bare-metal runtime: physical page
// frames (Frames, a bitmap allocator), x86-64 four-level page tables
// (PageTable) and the process's virtual address space (Space, the set of
// mmap regions that demand paging consults).
//
// The kernel runs this code from trap handlers, where Go's allocator and
// write barriers are unavailable: nothing here allocates after Init, and
// the state holds no Go pointers except those set once at boot. The same
// code runs in host-side tests over ordinary Go memory.
package mem

// PageSize is the size of a base page.
const PageSize = 4096

// HugePageSize is the size of a 2 MiB page (a page-directory leaf).
const HugePageSize = 2 << 20
