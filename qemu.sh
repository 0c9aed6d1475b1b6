#!/usr/bin/env bash
# qemu.sh boots a govirtio image (a Go program turned into a PVH ELF by
# cmd/mkimage) under qemu-system-x86_64 and exits with the guest's status.
#
# Usage: qemu.sh [options] IMAGE [-- extra qemu args]
#
# Exit status:
#   S     the guest wrote status S to the isa-debug-exit port 0xf4; QEMU then
#         exits with (S<<1)|1 and this script maps it back to S. Statuses
#         0..63 are unambiguous; above that they can collide with QEMU being
#         killed by a signal (shell status 128+N).
#   124   -timeout expired; QEMU was killed.
#   125   QEMU stopped without a guest status: it failed to start (bad option,
#         unloadable image), the guest reset or triple-faulted (-no-reboot
#         turns that into an exit), powered off by other means, or the monitor
#         quit it (Ctrl-A x). QEMU's own exit status is printed.
#   127   qemu-system-x86_64 is not installed and could not be installed.
#   2     usage error (bad option, missing or non-ELF image).
#
# Serial (COM1) is on stdout, QEMU's own messages on stderr; stdin is not
# needed (tests run this without a terminal). Interactively, Ctrl-A x quits.
set -euo pipefail

prog=${0##*/}

usage() {
	cat <<'EOF'
usage: qemu.sh [options] IMAGE [-- extra qemu args]

Boots IMAGE (an ELF with a PVH note, from cmd/mkimage) with serial on stdio
and the isa-debug-exit device; exits with the guest's status.

options:
  -m SIZE          guest RAM (default 256M)
  -smp N           virtual CPUs (default 1)
  -append CMDLINE  kernel command line (e.g. "ip=10.0.2.15/24 gw=10.0.2.2")
  -M MACHINE       machine type (default q35). On microvm (QEMU's machine
                   with no PCI bus) the NIC is virtio-net-device instead
                   of virtio-net-pci, a virtio-mmio transport the guest
                   finds in the ACPI tables (QEMU's default) or, with
                   -M microvm,acpi=off, on the kernel command line
                   (virtio_mmio.device=...)
  -accel A         auto, kvm or tcg (default auto: kvm only when the
                   kvm_intel or kvm_amd module is loaded and /dev/kvm is
                   usable, else tcg)
  -cpu MODEL       CPU model (default: host,-arch-capabilities under kvm,
                   max under tcg)
  -net MODE        none, user or tap (default none)
  -fwd PORT        -net user: forward host 127.0.0.1:PORT to guest port 80
  -hostfwd RULE    -net user: another forwarding rule in QEMU's syntax, e.g.
                   udp:127.0.0.1:7007-:7 (repeatable)
                   (default 8080)
  -tap IFNAME      -net tap: host tap interface (default tap0)
  -dev KIND        virtio-net-pci flavour: transitional, legacy or modern
                   (default transitional). On microvm: the virtio-mmio
                   register layout, legacy (version 1) or modern (version
                   2); transitional leaves QEMU's default (legacy in 7.2)
  -props K=V,...   extra virtio-net-pci (or virtio-net-device) properties
                   (e.g. mrg_rxbuf=off)
  -timeout SECS    kill QEMU after SECS seconds and exit 124
  -dry-run         print the QEMU command line instead of running it
  -h, -help        this text

environment: QEMU names the QEMU binary (default qemu-system-x86_64; when
set, a missing binary is reported, never installed).

Exit status: the guest's status S (written to port 0xf4), 124 on timeout,
125 when QEMU stopped without a guest status, 127 when QEMU is missing,
2 on usage errors.
EOF
}

die_usage() {
	echo "$prog: $*" >&2
	echo "$prog: run '$prog -h' for help" >&2
	exit 2
}

# need_value OPTION COUNT: fail unless OPTION has a value after it.
need_value() {
	if (($2 < 2)); then
		die_usage "option $1 needs a value"
	fi
}

mem=256M
smp=1
append=
machine=q35
accel=auto
cpu=
net=none
fwd=8080
hostfwds=""
tap=tap0
dev=transitional
props=
timeout_secs=
dry_run=0
image=
extra=()

while (($# > 0)); do
	case $1 in
	-m | -smp | -append | -M | -accel | -cpu | -net | -fwd | -hostfwd | -tap | -dev | -props | -timeout)
		need_value "$1" $#
		case $1 in
		-m) mem=$2 ;;
		-smp) smp=$2 ;;
		-append) append=$2 ;;
		-M) machine=$2 ;;
		-accel) accel=$2 ;;
		-cpu) cpu=$2 ;;
		-net) net=$2 ;;
		-fwd) fwd=$2 ;;
		-hostfwd) hostfwds+=",hostfwd=$2" ;;
		-tap) tap=$2 ;;
		-dev) dev=$2 ;;
		-props) props=$2 ;;
		-timeout) timeout_secs=$2 ;;
		esac
		shift 2
		;;
	-dry-run | --dry-run)
		dry_run=1
		shift
		;;
	-h | -help | --help)
		usage
		exit 0
		;;
	--)
		die_usage "missing IMAGE before --"
		;;
	-*)
		die_usage "unknown option $1"
		;;
	*)
		image=$1
		shift
		if (($# > 0)); then
			if [[ $1 != -- ]]; then
				die_usage "unexpected argument '$1' after IMAGE (options go before IMAGE; QEMU arguments after --)"
			fi
			shift
			extra=("$@")
		fi
		break
		;;
	esac
done

[[ -n $image ]] || die_usage "missing IMAGE"

# Validate option values here, where the message can name the option, rather
# than letting QEMU fail later with a less direct one.
[[ $smp =~ ^[1-9][0-9]*$ ]] || die_usage "-smp wants a positive integer, got '$smp'"
if [[ ! $fwd =~ ^[1-9][0-9]{0,4}$ ]] || ((fwd > 65535)); then
	die_usage "-fwd wants a TCP port, got '$fwd'"
fi
if [[ -n $timeout_secs && ! $timeout_secs =~ ^[1-9][0-9]*$ ]]; then
	die_usage "-timeout wants a positive number of seconds, got '$timeout_secs'"
fi
case $accel in
auto | kvm | tcg) ;;
*) die_usage "-accel wants auto, kvm or tcg, got '$accel'" ;;
esac
case $net in
none | user | tap) ;;
*) die_usage "-net wants none, user or tap, got '$net'" ;;
esac
case $dev in
transitional | legacy | modern) ;;
*) die_usage "-dev wants transitional, legacy or modern, got '$dev'" ;;
esac
if [[ -n $props && ! $props =~ ^[^,=]+=[^,]*(,[^,=]+=[^,]*)*$ ]]; then
	die_usage "-props wants K=V[,K=V...], got '$props'"
fi

if [[ ! -e $image ]]; then
	die_usage "image '$image' does not exist (build one with: go run ./cmd/mkimage -o IMAGE PROGRAM)"
fi
if [[ ! -f $image || ! -r $image ]]; then
	die_usage "image '$image' is not a readable file"
fi
magic=$(head -c 4 -- "$image" | od -An -tx1 | tr -d ' \n')
if [[ $magic != 7f454c46 ]]; then
	die_usage "image '$image' is not an ELF file (make one with cmd/mkimage)"
fi

# kvm_usable says whether KVM can run our guest. Only the hardware KVM
# modules count: on some hosts /dev/kvm is kvm-pvm, which runs every ring-0
# instruction through its emulator and stops at the first SSE instruction
# (DESIGN.md section 3), so its mere presence is not enough.
kvm_usable() {
	[[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]] && [[ -r /dev/kvm && -w /dev/kvm ]]
}

if [[ $accel == auto ]]; then
	if kvm_usable; then accel=kvm; else accel=tcg; fi
fi
if [[ -z $cpu ]]; then
	# arch-capabilities is dropped because QEMU aborts on some hosts with
	# "failed to set MSR 0x10a" when passing it through; the guest does not
	# need it.
	if [[ $accel == kvm ]]; then cpu=host,-arch-capabilities; else cpu=max; fi
fi

# microvm has no PCI bus: its NIC is a virtio-mmio device. With ACPI (its
# default) QEMU declares each one in the DSDT and puts its line on a second
# I/O APIC (GSI 24-47), which the MADT describes; with acpi=off it names
# each on the kernel command line (virtio_mmio.device=SIZE@BASE:IRQ, as
# Firecracker does) and keeps every line on the first I/O APIC. The guest
# reads either.
microvm=0
if [[ $machine == microvm || $machine == microvm,* ]]; then
	microvm=1
fi

qemu=${QEMU:-qemu-system-x86_64}

cmd=(
	"$qemu"
	-M "$machine"
	-accel "$accel"
	-cpu "$cpu"
	-m "$mem"
	-smp "$smp"
	-kernel "$image"
	-display none
	-vga none
	-serial mon:stdio
	-no-reboot
	-device "isa-debug-exit,iobase=0xf4,iosize=0x04"
)
if [[ -n $append ]]; then
	cmd+=(-append "$append")
fi

case $dev in
transitional) devprops=disable-legacy=off,disable-modern=off ;;
legacy) devprops=disable-legacy=off,disable-modern=on ;;
modern) devprops=disable-legacy=on,disable-modern=off ;;
esac
# romfile= skips the iPXE option ROM: the guest never boots from the
# network, and loading it costs boot time.
nicdev=virtio-net-pci
nicprops=netdev=n0,$devprops,romfile=${props:+,$props}
if ((microvm)); then
	# virtio-net-device has no ROM and no PCI flavours; the register
	# layout belongs to its virtio-mmio transport.
	nicdev=virtio-net-device
	nicprops=netdev=n0${props:+,$props}
	case $dev in
	legacy) cmd+=(-global virtio-mmio.force-legacy=true) ;;
	modern) cmd+=(-global virtio-mmio.force-legacy=false) ;;
	esac
fi
case $net in
none) cmd+=(-nic none) ;;
user)
	cmd+=(-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$fwd-:80$hostfwds"
		-device "$nicdev,$nicprops")
	;;
tap)
	cmd+=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no"
		-device "$nicdev,$nicprops")
	;;
esac
cmd+=("${extra[@]}")

# shell_quote prints its arguments as one line a shell reads back as the
# same words, quoting only the words that need it.
shell_quote() {
	local sep='' w
	for w in "$@"; do
		if [[ $w =~ ^[A-Za-z0-9_./:,=@%+-]+$ ]]; then
			printf '%s%s' "$sep" "$w"
		else
			printf "%s'%s'" "$sep" "${w//\'/\'\\\'\'}"
		fi
		sep=' '
	done
	printf '\n'
}

if ((dry_run)); then
	shell_quote "${cmd[@]}"
	exit 0
fi

# find_qemu makes sure $qemu runs, installing Debian's qemu-system-x86 when
# the default binary is missing and we are root on Debian.
find_qemu() {
	if command -v -- "$qemu" >/dev/null 2>&1; then
		return 0
	fi
	echo "$prog: $qemu not found; it comes from Debian's package qemu-system-x86" >&2
	if [[ -z ${QEMU:-} && $(id -u) == 0 && -r /etc/debian_version ]] && command -v apt-get >/dev/null 2>&1; then
		echo "$prog: installing qemu-system-x86 with apt-get" >&2
		if apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >&2 &&
			command -v -- "$qemu" >/dev/null 2>&1; then
			return 0
		fi
		echo "$prog: installing qemu-system-x86 failed" >&2
	else
		echo "$prog: install it with: sudo apt-get install qemu-system-x86" >&2
	fi
	exit 127
}
find_qemu

# QEMU's stderr is copied to a file as well, because QEMU exits 1 both when
# it fails to start and when the guest writes status 0: its error message is
# what tells them apart.
errlog=$(mktemp "${TMPDIR:-/tmp}/qemu.sh.XXXXXX")
trap 'rm -f -- "$errlog"' EXIT

exec 3> >(tee -- "$errlog" >&2)
tee_pid=$!

rc=0
if [[ -n $timeout_secs ]]; then
	# --foreground keeps QEMU in our process group so it can use the
	# terminal; QEMU starts no children that would need killing.
	timeout --foreground -k 5 "$timeout_secs" "${cmd[@]}" 2>&3 || rc=$?
else
	"${cmd[@]}" 2>&3 || rc=$?
fi
# Close our end and let tee finish writing the log before reading it.
exec 3>&-
wait "$tee_pid" || true

if [[ -n $timeout_secs ]] && ((rc == 124 || rc == 137)); then
	echo "$prog: timed out after ${timeout_secs}s; QEMU killed" >&2
	exit 124
fi
if ((rc == 1)) && grep -v -e ': warning: ' -- "$errlog" | grep -q -e '^[^ ]*qemu[^ ]*: '; then
	echo "$prog: QEMU failed (exit status 1, see its message above)" >&2
	exit 125
fi
if ((rc % 2 == 1)); then
	exit $((rc >> 1))
fi
if ((rc == 0)); then
	echo "$prog: QEMU exited 0 without a guest status (no write to port 0xf4: reset, triple fault, power-off or monitor quit)" >&2
elif ((rc > 128)); then
	echo "$prog: QEMU died of signal $((rc - 128)) (exit status $rc) without a guest status" >&2
else
	echo "$prog: QEMU exited with status $rc without a guest status" >&2
fi
exit 125
