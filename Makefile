# govirtio: build Go programs into bootable images and test them.
#
#   make run               build examples/$(EXAMPLE) and boot it under QEMU
#   make test              go vet, unit tests, fuzz seeds and QEMU boot tests
#   make image EXAMPLE=x   build build/x.img from examples/x
#   make bench             benchmarks

GO       ?= go
EXAMPLE  ?= hello
BUILD    ?= build
# Extra qemu.sh options for `make run`, e.g. QEMUFLAGS="-m 64M -append 'GODEBUG=gctrace=1'".
QEMUFLAGS ?=

IMAGE := $(BUILD)/$(EXAMPLE).img

.PHONY: run image test vet bench clean FORCE

run: $(IMAGE)
	./qemu.sh $(QEMUFLAGS) $(IMAGE)

image: $(IMAGE)

# Any package main that imports runtime/kernel becomes an image: a static
# Linux/amd64 binary whose entry is the PVH trampoline, plus the PVH note.
$(BUILD)/%.elf: FORCE
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o $@ -ldflags "-E _rt0_pvh" ./examples/$*

$(BUILD)/%.img: $(BUILD)/%.elf
	$(GO) run ./cmd/mkimage -o $@ $<

vet:
	$(GO) vet ./...

test: vet
	$(GO) test ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BUILD)

FORCE:
