// Command boot is the smallest image mkimage's tests boot: its entry point,
// in entry_amd64.s, runs as 32-bit PVH code, prints "ok" on COM1 and stops
// QEMU through isa-debug-exit with status 3. main never runs.
package main

// entry is the PVH entry point; the tests link with -E main.entry.
func entry()

func main() {
	println("boot: main is not reached under PVH")
}
