#!/usr/bin/env bash
# linux-compare.sh measures the TCP throughput of a govirtio guest and of a
# Linux guest (Debian's kernel, its virtio_net driver and busybox) on the
# same QEMU backend in one run, and prints both with the ratio
# govirtio/Linux. The absolute figures depend on the host (QEMU runs under
# TCG here); the ratio is what compares the drivers.
#
# Both guests serve the same two TCP services at 10.0.3.15: a zero source on
# port 19 (the guest transmits) and a discard sink on port 9 (the guest
# receives). Each guest has its own network namespace holding its tap
# device, so nothing leaves this machine and both can run at once. The same
# client, bench/client, measures both.
#
# The host is shared (other QEMUs come and go), so its speed drifts over a
# run. Measuring one guest after the other would charge that drift to one of
# them; instead both guests stay up and the measurements alternate, one
# direction at a time, for several rounds, with the order swapped every
# round. The table gives the median of each cell; the idle guest halts and
# costs next to nothing meanwhile.
#
# Usage: bench/linux-compare.sh [-seconds N] [-rounds R] [-keep]
#
# Needs root (network namespaces, tap devices, apt-get). Missing Debian
# packages (linux-image-amd64, busybox-static, iproute2, qemu-system-x86,
# kmod, cpio) are installed with apt-get.
set -euo pipefail

prog=${0##*/}
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/.." && pwd)

usage() {
	cat <<'EOF'
usage: bench/linux-compare.sh [-seconds N] [-rounds R] [-keep]

Boots a Linux guest and the govirtio examples/throughput guest on the same
QEMU virtio-net tap backend, measures their TCP throughput alternately and
prints the medians and the ratios govirtio/Linux.

options:
  -seconds N   measurement time per direction, guest and round (default 10)
  -rounds R    measurement rounds (default 3); the run takes about
               4*N*R seconds plus boot time
  -keep        keep the work directory (initramfs, serial logs) on exit
  -h, -help    this text

environment: GO names the go command (default go), QEMU the QEMU binary
(default qemu-system-x86_64).
EOF
}

seconds=10
rounds=3
keep=0
while (($# > 0)); do
	case $1 in
	-seconds | -rounds)
		if (($# < 2)); then
			echo "$prog: $1 needs a value" >&2
			exit 2
		fi
		if [[ $1 == -seconds ]]; then seconds=$2; else rounds=$2; fi
		shift 2
		;;
	-keep)
		keep=1
		shift
		;;
	-h | -help | --help)
		usage
		exit 0
		;;
	*)
		echo "$prog: unknown argument '$1' (see $prog -h)" >&2
		exit 2
		;;
	esac
done
if [[ ! $seconds =~ ^[1-9][0-9]*$ ]]; then
	echo "$prog: -seconds wants a positive integer, got '$seconds'" >&2
	exit 2
fi
if [[ ! $rounds =~ ^[1-9][0-9]*$ ]]; then
	echo "$prog: -rounds wants a positive integer, got '$rounds'" >&2
	exit 2
fi
if [[ $(id -u) != 0 ]]; then
	echo "$prog: must run as root (network namespaces, tap devices, apt-get)" >&2
	exit 1
fi

go=${GO:-go}
qemu=${QEMU:-qemu-system-x86_64}

# The guests' address and the host side of their taps, the same in both
# namespaces and used inside them only.
guest_ip=10.0.3.15
host_ip=10.0.3.1
tap=gvtap0
guests=(linux govirtio)
# One namespace per guest, named after this process so that concurrent runs
# do not collide.
declare -A ns=([linux]=gvbl$$ [govirtio]=gvbg$$)
# How long a guest may take to boot and answer on port 19 under TCG.
boot_timeout=300

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# ---------------------------------------------------------------------------
# Packages.

# install_missing installs the Debian packages the run needs that are not
# installed yet, running apt-get update first.
install_missing() {
	local missing=() p
	for p in linux-image-amd64 busybox-static iproute2 qemu-system-x86 kmod cpio; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	log "installing ${missing[*]}"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# ---------------------------------------------------------------------------
# Cleanup: every background QEMU is started with setsid, so its process
# group holds QEMU and any wrapper in front of it (ip netns exec, qemu.sh).

work=
pgids=()

# stop_group ends the process group PGID (one we started) and reaps it.
stop_group() {
	local pgid=$1
	if kill -0 -- "-$pgid" 2>/dev/null; then
		kill -TERM -- "-$pgid" 2>/dev/null || true
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 -- "-$pgid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	wait "$pgid" 2>/dev/null || true
}

cleanup() {
	local pgid
	for pgid in "${pgids[@]}"; do
		stop_group "$pgid"
	done
	pgids=()
	local g
	for g in "${guests[@]}"; do
		if ip netns list 2>/dev/null | grep -qw -- "${ns[$g]}"; then
			ip netns del "${ns[$g]}" || log "could not delete network namespace ${ns[$g]}"
		fi
	done
	if [[ -n $work ]]; then
		if ((keep)); then
			log "work directory kept: $work"
		else
			rm -rf -- "$work"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Linux guest: kernel and initramfs.

# find_kernel prints the newest /boot/vmlinuz-* version.
find_kernel() {
	local v
	v=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
	[[ -n $v ]] || die "no /boot/vmlinuz-* (package linux-image-amd64)"
	printf '%s\n' "$v"
}

# add_module_chain copies module NAME of kernel KVER and the modules it
# depends on into the initramfs tree DIR, appending the file names to
# DIR/lib/modules/order in load order. Built-in modules need nothing.
add_module_chain() {
	local dir=$1 kver=$2 name=$3 line path base
	while read -r line; do
		case $line in
		builtin\ *) continue ;;
		insmod\ *) ;;
		*) die "unexpected modprobe output for $name: $line" ;;
		esac
		path=${line#insmod }
		path=${path%% *}
		base=${path##*/}
		case $base in
		*.ko.xz)
			base=${base%.xz}
			[[ -e $dir/lib/modules/$base ]] || xz -dc -- "$path" >"$dir/lib/modules/$base"
			;;
		*.ko.zst)
			base=${base%.zst}
			[[ -e $dir/lib/modules/$base ]] || zstd -qdc -- "$path" >"$dir/lib/modules/$base"
			;;
		*.ko.gz)
			base=${base%.gz}
			[[ -e $dir/lib/modules/$base ]] || gzip -dc -- "$path" >"$dir/lib/modules/$base"
			;;
		*.ko) [[ -e $dir/lib/modules/$base ]] || cp -- "$path" "$dir/lib/modules/$base" ;;
		*) die "unexpected module file $path" ;;
		esac
		if ! grep -qxF -- "$base" "$dir/lib/modules/order"; then
			printf '%s\n' "$base" >>"$dir/lib/modules/order"
		fi
	done < <(modprobe -S "$kver" --show-depends "$name")
}

# build_initramfs KVER OUT writes a gzipped cpio initramfs to OUT whose init
# loads virtio_net, configures eth0 and serves ports 9 and 19.
build_initramfs() {
	local kver=$1 out=$2 dir=$work/initramfs
	rm -rf -- "$dir"
	mkdir -p -- "$dir"/{bin,dev,proc,sys,lib/modules}
	cp -- /bin/busybox "$dir/bin/busybox"
	ln -s busybox "$dir/bin/sh"
	# The kernel opens /dev/console for init before any devtmpfs is
	# mounted, so the node has to be in the archive.
	mknod -m 600 "$dir/dev/console" c 5 1
	: >"$dir/lib/modules/order"
	# virtio_pci finds the device, virtio_net drives it; modprobe lists the
	# rest (virtio, virtio_ring, failover, net_failover...) in load order.
	add_module_chain "$dir" "$kver" virtio_pci
	add_module_chain "$dir" "$kver" virtio_net

	# The services use dd with 64 KiB blocks, in the same size class as the
	# govirtio example's buffers, so neither guest is held back by small
	# system calls. nc -ll forks a child per connection and keeps listening.
	cat >"$dir/bin/sink" <<'EOF'
#!/bin/sh
exec dd of=/dev/null bs=65536 2>/dev/null
EOF
	cat >"$dir/bin/source" <<'EOF'
#!/bin/sh
exec dd if=/dev/zero bs=65536 2>/dev/null
EOF
	cat >"$dir/init" <<EOF
#!/bin/sh
# init of the linux-compare.sh guest: virtio_net up at $guest_ip, a discard
# sink on TCP port 9 and a zero source on TCP port 19.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do
	insmod "/lib/modules/\$m" || echo "linux-guest: insmod \$m failed"
done </lib/modules/order
i=0
while [ ! -e /sys/class/net/eth0 ] && [ \$i -lt 100 ]; do
	sleep 0.1
	i=\$((i + 1))
done
ip link set lo up
ip addr add $guest_ip/24 dev eth0
ip link set eth0 up
ip route add default via $host_ip
nc -ll -p 9 -e /bin/sink &
nc -ll -p 19 -e /bin/source &
# Record what the driver negotiated (feature bits, in order from bit 0) so
# the log shows both guests use the same device features.
echo "linux-guest: virtio features \$(cat /sys/class/net/eth0/device/features)"
echo "linux-guest: ready: discard on port 9, zero source on port 19, at $guest_ip"
# init must never exit: the kernel panics when it does.
while :; do sleep 3600; done
EOF
	chmod 755 "$dir/init" "$dir/bin/sink" "$dir/bin/source"
	(cd -- "$dir" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out"
}

# ---------------------------------------------------------------------------
# Network namespaces and guests.

# setup_netns NS creates namespace NS with the tap device, host side up.
setup_netns() {
	local n=$1
	ip netns add "$n"
	ip -n "$n" link set lo up
	ip -n "$n" tuntap add dev "$tap" mode tap
	ip -n "$n" addr add "$host_ip/24" dev "$tap"
	ip -n "$n" link set "$tap" up
}

# start_bg LOG CMD... runs CMD in its own session and process group with
# stdout and stderr in LOG, records the group and sets $bg_pgid.
bg_pgid=
start_bg() {
	local logf=$1
	shift
	setsid "$@" >"$logf" 2>&1 </dev/null &
	bg_pgid=$!
	pgids+=("$bg_pgid")
}

# wait_ready GUEST waits until GUEST answers on port 19, failing if its
# QEMU exits or boot_timeout passes.
wait_ready() {
	local g=$1 start=$SECONDS
	log "waiting for the $g guest at $guest_ip in ${ns[$g]} (up to ${boot_timeout}s)"
	while :; do
		if ! kill -0 -- "${pgid[$g]}" 2>/dev/null; then
			tail -n 30 -- "$work/$g.log" >&2 || true
			die "the $g guest's QEMU exited before port 19 answered (log above)"
		fi
		if ip netns exec "${ns[$g]}" "$work/client" -addr "$guest_ip" -probe 2>/dev/null; then
			log "$g guest ready after $((SECONDS - start))s"
			return 0
		fi
		if ((SECONDS - start > boot_timeout)); then
			tail -n 30 -- "$work/$g.log" >&2 || true
			die "the $g guest did not answer on port 19 within ${boot_timeout}s (log above)"
		fi
		sleep 1
	done
}

# measure GUEST DIR (tx or rx, the guest's side) runs the client once and
# appends the MB/s figure to the cell's list in results.
declare -A results=()
measure() {
	local g=$1 dir=$2 out mbps
	if ! kill -0 -- "${pgid[$g]}" 2>/dev/null; then
		tail -n 30 -- "$work/$g.log" >&2 || true
		die "the $g guest's QEMU has exited (log above)"
	fi
	out=$(ip netns exec "${ns[$g]}" "$work/client" -addr "$guest_ip" -seconds "$seconds" -dir "$dir") || {
		tail -n 30 -- "$work/$g.log" >&2 || true
		die "client failed against the $g guest ($dir; guest log above)"
	}
	log "round $round: $g: $out"
	mbps=$(awk -v k="guest-$dir" '$1 == k { print $2 }' <<<"$out")
	[[ -n $mbps ]] || die "unexpected client output for $g: $out"
	results[$g.$dir]+="$mbps "
}

# median prints the median of its arguments (the mean of the middle two for
# an even count), with three decimals.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f\n", m
	}'
}

# ratio A B prints A/B with two decimals, or n/a when B is zero.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# ---------------------------------------------------------------------------
# Main.

install_missing
command -v "$go" >/dev/null 2>&1 || die "$go not found (set GO)"
command -v "$qemu" >/dev/null 2>&1 || die "$qemu not found (set QEMU)"

work=$(mktemp -d "${TMPDIR:-/tmp}/linux-compare.XXXXXX")

log "building the client and the govirtio image"
(cd -- "$root" && "$go" build -o "$work/client" ./bench/client)
make -C "$root" --no-print-directory image EXAMPLE=throughput >&2
image=$root/build/throughput.img

kver=$(find_kernel)
kernel=/boot/vmlinuz-$kver
log "building the Linux initramfs for $kver"
build_initramfs "$kver" "$work/initrd.gz"

declare -A pgid=()
for g in "${guests[@]}"; do
	setup_netns "${ns[$g]}"
done

# The Linux guest gets the machine, CPU, memory and NIC flavour qemu.sh
# gives the govirtio guest (q35, TCG, max, transitional virtio-net-pci
# without option ROM), so the two differ only in the guest.
start_bg "$work/linux.log" ip netns exec "${ns[linux]}" "$qemu" \
	-M q35 -accel tcg -cpu max -m 512M -smp 1 \
	-kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1" \
	-display none -vga none -serial stdio -no-reboot \
	-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
	-device "virtio-net-pci,netdev=n0,disable-legacy=off,disable-modern=off,romfile="
pgid[linux]=$bg_pgid
start_bg "$work/govirtio.log" ip netns exec "${ns[govirtio]}" "$root/qemu.sh" \
	-accel tcg -cpu max -m 512M -net tap -tap "$tap" \
	-append "ip=$guest_ip/24 gw=$host_ip" "$image"
pgid[govirtio]=$bg_pgid

for g in "${guests[@]}"; do
	wait_ready "$g"
done

log "measuring: $rounds rounds of ${seconds}s per direction and guest"
for ((round = 1; round <= rounds; round++)); do
	# Swapping the order every round puts each guest first as often as
	# second, so a trend in the host's speed cancels out.
	if ((round % 2)); then order=(linux govirtio); else order=(govirtio linux); fi
	for dir in tx rx; do
		for g in "${order[@]}"; do
			measure "$g" "$dir"
		done
	done
done

# Word splitting of the result lists is intended: one figure per word.
# shellcheck disable=SC2086
{
	tx_linux=$(median ${results[linux.tx]})
	rx_linux=$(median ${results[linux.rx]})
	tx_govirtio=$(median ${results[govirtio.tx]})
	rx_govirtio=$(median ${results[govirtio.rx]})
}

printf '\nTCP throughput, MB/s (10^6 bytes/s): median of %s rounds of %ss per direction\n' "$rounds" "$seconds"
printf 'QEMU TCG (-cpu max, 1 vCPU), virtio-net-pci on a tap backend; TX/RX from the guest'"'"'s side\n'
printf '%-22s %10s %10s\n' guest TX RX
printf '%-22s %10s %10s\n' "linux $kver" "$tx_linux" "$rx_linux"
printf '%-22s %10s %10s\n' govirtio "$tx_govirtio" "$rx_govirtio"
printf '%-22s %10s %10s\n' govirtio/linux "$(ratio "$tx_govirtio" "$tx_linux")" "$(ratio "$rx_govirtio" "$rx_linux")"
printf '\nper round (MB/s):\n'
for g in "${guests[@]}"; do
	for dir in tx rx; do
		printf '  %-9s %s %s\n' "$g" "$dir" "${results[$g.$dir]% }"
	done
done
