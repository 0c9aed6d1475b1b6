# govirtio: build Go programs into bootable images and test them.
#
#   make run               build examples/httpd and boot it under QEMU with
#                          user networking: http://127.0.0.1:$(PORT)/
#   make run EXAMPLE=hello any other example (no network)
#   make test              go vet, unit tests, fuzz seeds and QEMU boot tests
#   make image EXAMPLE=x   build build/x.img from examples/x
#   make bench             benchmarks (go test -bench)
#   make bench-linux       govirtio against the Linux guest driver on the same
#                          QEMU tap backend, as ratios from one run (root)

GO       ?= go
EXAMPLE  ?= httpd
BUILD    ?= build
PORT     ?= 8080
# Extra qemu.sh options, e.g. QEMUFLAGS="-dev legacy -props mrg_rxbuf=off".
QEMUFLAGS ?=
# bench/linux-compare.sh options, e.g. BENCHFLAGS="-seconds 2 -rounds 1".
BENCHFLAGS ?=

IMAGE := $(BUILD)/$(EXAMPLE).img

# How each example is booted by `make run`.
NET_httpd := -net user -fwd $(PORT)
NET_echo  := -net user -fwd $(PORT) -hostfwd tcp:127.0.0.1:7007-:7 -hostfwd udp:127.0.0.1:7007-:7
MSG_httpd := httpd: http://127.0.0.1:$(PORT)/ (Ctrl-A x quits)
MSG_echo  := echo: TCP and UDP on 127.0.0.1:7007 (Ctrl-A x quits)

.PHONY: run image test vet bench bench-linux soak clean FORCE
.SECONDARY:

run: $(IMAGE)
	@$(if $(MSG_$(EXAMPLE)),echo "$(MSG_$(EXAMPLE))")
	./qemu.sh $(NET_$(EXAMPLE)) $(QEMUFLAGS) $(IMAGE)

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
	$(GO) vet -tags hostnet ./examples/throughput

test: vet
	$(GO) test -timeout 45m ./...
	$(GO) test -tags hostnet ./examples/throughput

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-linux:
	./bench/linux-compare.sh $(BENCHFLAGS)

# SOAK is how long `make soak` keeps httpd busy (network/soak_test.go).
SOAK ?= 10m
soak:
	GOVIRTIO_SOAK=$(SOAK) $(GO) test -run '^TestSoak$$' -timeout 0 -v ./network

clean:
	rm -rf $(BUILD)

FORCE:
