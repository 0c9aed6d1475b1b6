# govirtio: build Go programs into bootable images and test them.
#
#   make run               build examples/httpd and boot it under QEMU with
#                          user networking: http://127.0.0.1:$(PORT)/
#   make run EXAMPLE=hello any other example (hello: no network; stdhttpd:
#                          a plain Go server, no govirtio import)
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
NET_stdhttpd := -net user -fwd $(PORT)
NET_fetch := -net user
MSG_httpd := httpd: http://127.0.0.1:$(PORT)/ (Ctrl-A x quits)
MSG_echo  := echo: TCP and UDP on 127.0.0.1:7007 (Ctrl-A x quits)
MSG_stdhttpd := stdhttpd: http://127.0.0.1:$(PORT)/ (Ctrl-A x quits)

# Files each example packs into its image (cmd/mkimage -files).
FILES_stdhttpd := -files examples/stdhttpd/static

.PHONY: run image test vet bench bench-linux soak clean FORCE
.SECONDARY:

run: $(IMAGE)
	@$(if $(MSG_$(EXAMPLE)),echo "$(MSG_$(EXAMPLE))")
	./qemu.sh $(NET_$(EXAMPLE)) $(QEMUFLAGS) $(IMAGE)

image: $(IMAGE)

# Any package main becomes an image: cmd/mkimage links the runtime in,
# builds a static Linux/amd64 binary whose entry is the PVH trampoline
# (kept as build/NAME.elf, for pprof), packs the files and adds the PVH
# note.
$(BUILD)/%.img: FORCE
	@mkdir -p $(BUILD)
	$(GO) run ./cmd/mkimage -elf $(BUILD)/$*.elf $(FILES_$*) -o $@ ./examples/$*

$(BUILD)/%.elf: $(BUILD)/%.img ;

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
