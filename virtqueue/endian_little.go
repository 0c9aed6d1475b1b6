//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package virtqueue

// hostLittleEndian: ring fields are little-endian (virtio 1.2 §2.4; legacy
// devices use the guest's order, which is little-endian on these hosts).
const hostLittleEndian = true
