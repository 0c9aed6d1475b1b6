#!/usr/bin/env bash
# linux-compare.sh measures a govirtio guest against a Linux guest (Debian's
# kernel and its virtio_net driver) running the same Go server on the same
# QEMU backend in one run, and prints one table of both with the ratios.
# The absolute figures depend on the host (QEMU runs under TCG here); the
# ratios are what compare the two.
#
# Both guests run examples/throughput at 10.0.3.15: the govirtio guest as
# the image, the Linux guest as the same program built with -tags hostnet (a
# static binary on the kernel's sockets) started by its initramfs. So the
# handlers are the same code, and the guests differ only in what is under
# them. The measurements, per guest:
#
#   idle ping RTT        ping -c 30 -i 0.2: average and minimum
#   request/response     bench/client -mode rr: one connection to the echo
#                        port, one byte each way: transactions/s, p50, p99
#   HTTP requests        wrk -t1 -c1 and -t1 -c8 on GET /: req/s, p50, p99
#   HTTP transfers       bench/client -mode http: 64 MiB GET /bytes (the
#                        guest transmits) and POST /sha256 (it receives)
#   raw TCP              bench/client -mode tcp: the zero source on port 19
#                        and the discard sink on port 9
#   guest CPU            bench/client -mode cpu before and after each of
#                        those but ping: the guest's busy CPU time per
#                        transaction or request (us) or per MB moved (ms),
#                        and its busy share of the time (%)
#
# all twice: with the device's MSI-X (the default) and with INTx
# (vectors=0 on virtio-net-pci, which Linux then uses too), restarting both
# guests between the two phases.
#
# Each guest has its own network namespace holding its tap device, so
# nothing leaves this machine and both can run at once. The host is shared
# (other QEMUs come and go), so its speed drifts over a run. Measuring one
# guest after the other would charge that drift to one of them; instead both
# guests stay up and the measurements alternate, one guest after the other
# for each figure, for several rounds, with the order swapped every round.
# The table gives the median of each cell; the idle guest halts and costs
# next to nothing meanwhile.
#
# The guest CPU figures come from examples/throughput's GET /cpu: the time
# the guest's CPU was busy since boot (govirtio: all but its idle thread,
# kernel included; Linux: /proc/stat's user, nice, system, irq, softirq and
# steal time) and the time in all, read before and after a measurement.
# The busy share of the interval, times the interval by the host's clock
# (a guest's clock can run slow, see cpu_figures), is what the work cost
# the guest, whatever did it (program, stack, driver, interrupts), plus the
# little the two readings and the guest's background work take. Linux
# samples its busy times at the tick, so its figures from short
# measurements are rougher. A guest whose server has no GET /cpu
# (GOVIRTIO_IMAGE or LINUX_SERVER from an older commit) gets no CPU figures.
#
# Usage: bench/linux-compare.sh [-seconds N] [-rounds R] [-intx only|both|none] [-keep]
#
# Needs root (network namespaces, tap devices, apt-get). Missing Debian
# packages (linux-image-amd64, iproute2, qemu-system-x86, kmod, cpio,
# busybox-static, iputils-ping, wrk) are installed with apt-get.
set -euo pipefail
# A failure inside $(...) fails the substitution too.
shopt -s inherit_errexit

prog=${0##*/}
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/.." && pwd)

usage() {
	cat <<'EOF'
usage: bench/linux-compare.sh [-seconds N] [-rounds R] [-intx only|both|none] [-keep]

Boots a Linux guest and a govirtio guest, both running examples/throughput,
on the same QEMU virtio-net tap backend, measures them alternately (idle
ping, TCP request/response, wrk on one and eight connections, 64 MiB HTTP
transfers both ways, raw TCP both ways, and around each but ping the guest
CPU time the work took) and prints the medians and the ratios, oriented so
that a ratio above 1 means govirtio did better.

options:
  -seconds N   time per timed measurement (request/response, each wrk run,
               each raw TCP direction) per guest and round (default 10);
               ping (6 s) and the HTTP transfers (64 MiB) take what they take
  -rounds R    measurement rounds (default 3)
  -intx W      which interrupt phases to run: both (MSI-X, then INTx with
               vectors=0), none (MSI-X only) or only (INTx only); default both
  -keep        keep the work directory (initramfs, serial logs) on exit
  -h, -help    this text

Under TCG a phase takes about R*(10*N+30) seconds plus the guests' boot
(10 to 30 s): `-seconds 2 -rounds 1` took under two minutes for both
phases, the defaults take about a quarter of an hour.

environment:
  GO              the go command (default go)
  QEMU            the QEMU binary (default qemu-system-x86_64)
  GOVIRTIO_IMAGE  a govirtio image to boot instead of building
                  examples/throughput (make image EXAMPLE=throughput), e.g.
                  one built from an older commit
  LINUX_SERVER    a server binary for the Linux guest instead of building
                  examples/throughput with -tags hostnet; it must be static
                  (CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build
                  -tags hostnet ./examples/throughput)
Both must serve the services of examples/throughput (ports 7, 9, 19, 80);
one without its GET /cpu gets no guest CPU figures.
EOF
}

seconds=10
rounds=3
intx=both
keep=0
while (($# > 0)); do
	case $1 in
	-seconds | -rounds | -intx)
		if (($# < 2)); then
			echo "$prog: $1 needs a value" >&2
			exit 2
		fi
		case $1 in
		-seconds) seconds=$2 ;;
		-rounds) rounds=$2 ;;
		-intx) intx=$2 ;;
		esac
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
# The phases to run, in order: msix (the device's default) and intx.
case $intx in
both) phases=(msix intx) ;;
none) phases=(msix) ;;
only) phases=(intx) ;;
*)
	echo "$prog: -intx wants only, both or none, got '$intx'" >&2
	exit 2
	;;
esac
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
# Each phase's name in the table and the virtio-net-pci properties it adds
# on both guests. vectors=0 takes the MSI-X capability away, so that both
# drivers fall back to the INTx line.
declare -A phase_title=([msix]=MSI-X [intx]=INTx)
declare -A phase_props=([msix]="" [intx]=vectors=0)
# The ping measurement: count and interval (below 0.2 s needs root; we are).
ping_count=30
ping_interval=0.2
# The HTTP transfers' size.
http_bytes=$((64 << 20))

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
	for p in linux-image-amd64 busybox-static iproute2 qemu-system-x86 kmod cpio iputils-ping wrk; do
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

# stop_all ends every process group started so far.
stop_all() {
	local pgid
	for pgid in "${pgids[@]}"; do
		stop_group "$pgid"
	done
	pgids=()
}

cleanup() {
	stop_all
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

# build_initramfs KVER SERVER OUT writes a gzipped cpio initramfs to OUT
# whose init loads virtio_net, configures eth0 and starts the server binary
# SERVER (examples/throughput built with -tags hostnet).
build_initramfs() {
	local kver=$1 server=$2 out=$3 dir=$work/initramfs
	rm -rf -- "$dir"
	mkdir -p -- "$dir"/{bin,dev,proc,sys,lib/modules}
	cp -- /bin/busybox "$dir/bin/busybox"
	ln -s busybox "$dir/bin/sh"
	cp -- "$server" "$dir/bin/throughput"
	# The kernel opens /dev/console for init before any devtmpfs is
	# mounted, so the node has to be in the archive.
	mknod -m 600 "$dir/dev/console" c 5 1
	: >"$dir/lib/modules/order"
	# virtio_pci finds the device, virtio_net drives it; modprobe lists the
	# rest (virtio, virtio_ring, failover, net_failover...) in load order.
	add_module_chain "$dir" "$kver" virtio_pci
	add_module_chain "$dir" "$kver" virtio_net

	cat >"$dir/init" <<EOF
#!/bin/sh
# init of the linux-compare.sh guest: virtio_net up at $guest_ip, then
# examples/throughput (built with -tags hostnet) serving on it.
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
# Record what the driver negotiated (feature bits, in order from bit 0) and
# its interrupts (virtioN-input.0 and -output.0 with MSI-X, one virtioN line
# with INTx), so that the log shows what both guests ran with.
echo "linux-guest: virtio features \$(cat /sys/class/net/eth0/device/features)"
grep virtio /proc/interrupts | sed 's/^/linux-guest: interrupts /'
/bin/throughput &
echo "linux-guest: started examples/throughput at $guest_ip"
# init must never exit: the kernel panics when it does.
while :; do sleep 3600; done
EOF
	chmod 755 "$dir/init"
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

# The running guests' process groups and serial logs.
declare -A pgid=() glog=()

# start_guests PHASE boots both guests with the phase's device properties.
start_guests() {
	local phase=$1 props=${phase_props[$1]}
	glog[linux]=$work/$phase-linux.log
	glog[govirtio]=$work/$phase-govirtio.log
	# The Linux guest gets the machine, CPU, memory and NIC flavour qemu.sh
	# gives the govirtio guest (q35, TCG, max, transitional virtio-net-pci
	# without option ROM), so the two differ only in the guest.
	start_bg "${glog[linux]}" ip netns exec "${ns[linux]}" "$qemu" \
		-M q35 -accel tcg -cpu max -m 512M -smp 1 \
		-kernel "$kernel" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1" \
		-display none -vga none -serial stdio -no-reboot \
		-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
		-device "virtio-net-pci,netdev=n0,disable-legacy=off,disable-modern=off,romfile=${props:+,$props}"
	pgid[linux]=$bg_pgid
	start_bg "${glog[govirtio]}" ip netns exec "${ns[govirtio]}" "$root/qemu.sh" \
		-accel tcg -cpu max -m 512M -net tap -tap "$tap" ${props:+-props "$props"} \
		-append "ip=$guest_ip/24 gw=$host_ip" "$image"
	pgid[govirtio]=$bg_pgid
}

# guest_failed GUEST MESSAGE shows the tail of GUEST's serial log and dies
# with MESSAGE.
guest_failed() {
	log "last lines of the $1 guest's serial log (${glog[$1]}):"
	tail -n 30 -- "${glog[$1]}" >&2 || true
	die "$2"
}

# check_alive GUEST dies if GUEST's QEMU has exited.
check_alive() {
	kill -0 -- "${pgid[$1]}" 2>/dev/null || guest_failed "$1" "the $1 guest's QEMU has exited"
}

# wait_ready GUEST waits until GUEST answers on port 19, failing if its
# QEMU exits or boot_timeout passes.
wait_ready() {
	local g=$1 start=$SECONDS
	log "waiting for the $g guest at $guest_ip in ${ns[$g]} (up to ${boot_timeout}s)"
	while :; do
		kill -0 -- "${pgid[$g]}" 2>/dev/null ||
			guest_failed "$g" "the $g guest's QEMU exited before port 19 answered"
		if ip netns exec "${ns[$g]}" "$work/client" -addr "$guest_ip" -probe 2>/dev/null; then
			log "$g guest ready after $((SECONDS - start))s"
			check_cpu "$g"
			return 0
		fi
		((SECONDS - start <= boot_timeout)) ||
			guest_failed "$g" "the $g guest did not answer on port 19 within ${boot_timeout}s"
		sleep 1
	done
}

# ---------------------------------------------------------------------------
# Measurements. Each prints its figures one a line as "name value unit",
# the format bench/client prints; record files them.

# The figures: results[PHASE.GUEST.NAME] is the list of one figure's values,
# one per round.
declare -A results=()

# record PHASE GUEST FIGURES appends every "name value ..." line of FIGURES
# to its list in results.
record() {
	local phase=$1 g=$2 name value rest
	while read -r name value rest; do
		[[ -n $name ]] || continue
		[[ $value =~ ^[0-9]+([.][0-9]+)?$ ]] || die "bad figure from the $g guest's measurement: $name $value $rest"
		results[$phase.$g.$name]+="$value "
	done <<<"$3"
}

# in_ns GUEST CMD... runs CMD in GUEST's namespace.
in_ns() {
	local g=$1
	shift
	ip netns exec "${ns[$g]}" "$@"
}

# measure_ping GUEST: idle round-trip time, average and minimum.
measure_ping() {
	local g=$1 out
	# Two pings first, unmeasured: the first echo after boot runs code
	# paths (ARP, ICMP) that QEMU's TCG has not translated yet, which costs
	# milliseconds once and says nothing about wake-up latency.
	in_ns "$g" ping -n -q -c 2 -i "$ping_interval" "$guest_ip" >/dev/null ||
		guest_failed "$g" "ping of the $g guest failed"
	out=$(in_ns "$g" ping -n -q -c "$ping_count" -i "$ping_interval" "$guest_ip") ||
		guest_failed "$g" "ping of the $g guest failed: $out"
	log "  $(grep -E 'packets transmitted|^rtt' <<<"$out" | tr '\n' ' ')"
	# rtt min/avg/max/mdev = 0.512/0.803/1.204/0.102 ms
	awk -F'[/ ]+' '/^rtt / { printf "ping-min %s ms\nping-avg %s ms\n", $7, $8 }' <<<"$out"
}

# wrk_figures PREFIX reads wrk --latency output and prints PREFIX (req/s,
# then the count of requests as the client prints its transactions),
# PREFIX-p50 and PREFIX-p99 (ms). wrk prints latencies with the unit that
# suits them: us, ms, s, m or h.
wrk_figures() {
	awk -v p="$1" '
	function ms(s, v, u) {
		v = s + 0
		u = s
		sub(/^[0-9.]+/, "", u)
		if (u == "us") return v / 1000
		if (u == "ms") return v
		if (u == "s") return v * 1000
		if (u == "m") return v * 60000
		if (u == "h") return v * 3600000
		printf "%s: unknown wrk latency unit in %s\n", p, s > "/dev/stderr"
		exit 1
	}
	/Latency Distribution/ { dist = 1; next }
	dist && $1 == "50%" { printf "%s-p50 %.4f ms\n", p, ms($2) }
	dist && $1 == "99%" { printf "%s-p99 %.4f ms\n", p, ms($2) }
	# 12345 requests in 10.00s, 1.52MB read
	$2 == "requests" && $3 == "in" { count = $1 }
	/^Requests\/sec:/ { rate = $2 }
	END {
		if (rate == "" || count == "") {
			printf "%s: no request count or rate in wrk output\n", p > "/dev/stderr"
			exit 1
		}
		printf "%s %s req/s %d requests\n", p, rate, count
	}
	'
}

# measure_wrk GUEST CONNS: wrk with one thread and CONNS connections on
# GET /, requests per second and latency percentiles.
measure_wrk() {
	local g=$1 c=$2 out figures
	out=$(in_ns "$g" wrk -t1 -c"$c" -d"${seconds}s" --latency "http://$guest_ip/" 2>&1) ||
		guest_failed "$g" "wrk -c$c against the $g guest failed: $out"
	log "  wrk -c$c: $(grep -E 'requests in|Socket errors|Non-2xx' <<<"$out" | sed 's/^ *//' | tr '\n' ' ')"
	if grep -q 'Non-2xx' <<<"$out"; then
		guest_failed "$g" "wrk -c$c: the $g guest answered with errors: $out"
	fi
	figures=$(wrk_figures "wrk$c" <<<"$out") || die "could not read wrk's output: $out"
	(($(wc -l <<<"$figures") == 3)) || die "could not read wrk's output: $out"
	printf '%s\n' "$figures"
}

# measure_client GUEST ARGS... runs bench/client against GUEST.
measure_client() {
	local g=$1 out
	shift
	out=$(in_ns "$g" "$work/client" -addr "$guest_ip" "$@") ||
		guest_failed "$g" "client $* failed against the $g guest"
	log "  client $*: $(tr '\n' ' ' <<<"$out")"
	printf '%s\n' "$out"
}

# has_cpu[GUEST] is 1 when GUEST's server answers GET /cpu (check_cpu).
declare -A has_cpu=()

# read_cpu GUEST prints GUEST's CPU time since boot, busy and total in ns
# of its clock, and when the reading arrived in Unix ns of ours.
read_cpu() {
	local g=$1 out
	out=$(in_ns "$g" "$work/client" -addr "$guest_ip" -mode cpu) ||
		guest_failed "$g" "reading the $g guest's CPU time (GET /cpu) failed"
	awk '$1 == "cpu-busy-ns" { b = $2 } $1 == "cpu-total-ns" { t = $2 } $1 == "cpu-at-ns" { h = $2 }
		END { if (b == "" || t == "" || h == "") exit 1; print b, t, h }' <<<"$out" ||
		die "could not read the client's -mode cpu output: $out"
}

# check_cpu GUEST sets has_cpu[GUEST]: whether its server answers GET /cpu.
check_cpu() {
	local g=$1
	if in_ns "$g" "$work/client" -addr "$guest_ip" -mode cpu >/dev/null; then
		has_cpu[$g]=1
	else
		has_cpu[$g]=0
		log "the $g guest does not serve GET /cpu (a server from an older commit?): no guest CPU figures for it"
	fi
}

# clock_tolerance is how far from the host's a guest's clock may run over
# a measurement before the log says so: Linux's /proc/stat counts in 10 ms
# ticks, and the readings' own latencies differ.
clock_tolerance=0.05

# cpu_figures GUEST BEFORE AFTER reads a measurement's figures on stdin and
# prints, for each that counts its work ("name value unit count what", what
# being transactions, requests or bytes), the guest's CPU cost between the
# readings BEFORE and AFTER (read_cpu): name-cpu, busy time per transaction
# or request (us) or per MB (ms, the same number as ns per byte), and
# name-busy, the busy share of the time (%).
#
# The busy time is the guest's busy share of its own clock times the
# host's time between the readings. A guest clock is not always right: the
# govirtio kernel calibrates its TSC against 10 ms of the PIT at boot, and
# a QEMU held off the host's CPU meanwhile makes its clock run slow from
# then on (seen: 0.36 of real time). The log says when a guest's clock
# strays beyond clock_tolerance.
cpu_figures() {
	local g=$1 b0 t0 h0 b1 t1 h1
	read -r b0 t0 h0 <<<"$2"
	read -r b1 t1 h1 <<<"$3"
	local busy=$((b1 - b0)) total=$((t1 - t0)) host=$((h1 - h0))
	((busy >= 0 && total > 0 && busy <= total && host > 0)) ||
		die "the $g guest's CPU time went from ($2) to ($3) (busy and total ns, host Unix ns)"
	awk -v busy="$busy" -v total="$total" -v host="$host" -v g="$g" -v tol="$clock_tolerance" -v prog="$prog" '
	$5 == "transactions" || $5 == "requests" || $5 == "bytes" {
		if ($4 + 0 <= 0) {
			printf "%s: no %s counted in %s against the %s guest\n", prog, $5, $1, g > "/dev/stderr"
			exit 1
		}
		rate = total / host
		if (!warned && (rate < 1 - tol || rate > 1 + tol)) {
			printf "%s:   the %s guest'"'"'s clock ran at %.3f of real time over %s; its busy time is taken as its busy share of real time\n",
				prog, g, rate, $1 > "/dev/stderr"
			warned = 1
		}
		real = busy / total * host
		if ($5 == "bytes") printf "%s-cpu %.6f ms/MB\n", $1, real / $4
		else printf "%s-cpu %.3f us\n", $1, real / 1000 / $4
		printf "%s-busy %.2f %%\n", $1, 100 * busy / total
	}'
}

# with_cpu GUEST FN ARGS... runs the measurement FN GUEST ARGS... between
# two readings of GUEST's CPU time and prints its figures and the guest
# CPU figures derived from them (cpu_figures).
with_cpu() {
	local g=$1 fn=$2 before after out
	shift 2
	if ((!has_cpu[$g])); then
		"$fn" "$g" "$@"
		return
	fi
	before=$(read_cpu "$g")
	out=$("$fn" "$g" "$@")
	after=$(read_cpu "$g")
	printf '%s\n' "$out"
	cpu_figures "$g" "$before" "$after" <<<"$out"
}

# steps are the measurements of one round, in order: a function and its
# arguments after the guest; with_cpu in front adds the guest CPU figures.
# The idle ping goes first, while both guests are idle.
steps=(
	"measure_ping"
	"with_cpu measure_client -mode rr -seconds $seconds"
	"with_cpu measure_wrk 1"
	"with_cpu measure_wrk 8"
	"with_cpu measure_client -mode http -dir tx -bytes $http_bytes"
	"with_cpu measure_client -mode http -dir rx -bytes $http_bytes"
	"with_cpu measure_client -mode tcp -dir tx -seconds $seconds"
	"with_cpu measure_client -mode tcp -dir rx -seconds $seconds"
)

# measure_phase PHASE runs the rounds of PHASE with both guests up.
measure_phase() {
	local phase=$1 round step g out fn rest what
	local -a order args
	for ((round = 1; round <= rounds; round++)); do
		log "${phase_title[$phase]}: round $round of $rounds"
		# Swapping the order every round puts each guest first as often as
		# second, so a trend in the host's speed cancels out.
		if ((round % 2)); then order=(linux govirtio); else order=(govirtio linux); fi
		for step in "${steps[@]}"; do
			read -r fn rest <<<"$step"
			read -r -a args <<<"$rest"
			what=${step#with_cpu }
			for g in "${order[@]}"; do
				check_alive "$g"
				log " $g: ${what#measure_}"
				out=$("$fn" "$g" "${args[@]}")
				record "$phase" "$g" "$out"
			done
		done
	done
}

# ---------------------------------------------------------------------------
# The table.

# median prints the median of its arguments (the mean of the middle two for
# an even count), or - when there are none.
median() {
	(($# > 0)) || {
		echo -
		return
	}
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g\n", m
	}'
}

# ratio BETTER A B prints the ratio of A (Linux) and B (govirtio) oriented
# so that above 1 means govirtio did better: B/A when higher is better, A/B
# when lower is; n/a when a figure is missing or the divisor is zero, and
# nothing for a figure that is neither better higher nor lower (none).
ratio() {
	awk -v dir="$1" -v l="$2" -v g="$3" 'BEGIN {
		if (dir == "none") { print ""; exit }
		if (l == "-" || g == "-") { print "n/a"; exit }
		if (dir == "higher") { a = g; b = l } else { a = l; b = g }
		if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b
	}'
}

# num prints a figure with a precision that suits its size.
num() {
	awk -v v="$1" 'BEGIN {
		if (v == "-") print v
		else if (v >= 100) printf "%.0f\n", v
		else if (v >= 10) printf "%.1f\n", v
		else if (v >= 1) printf "%.2f\n", v
		else printf "%.3f\n", v
	}'
}

# rows are the table's rows: figure name, label, unit, and whether higher
# or lower is better (none: neither, no ratio).
rows=(
	"ping-avg|idle ping RTT, average|ms|lower"
	"ping-min|idle ping RTT, minimum|ms|lower"
	"rr|TCP request/response, 1 byte|trans/s|higher"
	"rr-p50|  latency p50|ms|lower"
	"rr-p99|  latency p99|ms|lower"
	"rr-cpu|  guest CPU per transaction|us|lower"
	"rr-busy|  guest CPU busy|%|none"
	"wrk1|wrk GET / -c1|req/s|higher"
	"wrk1-p50|  latency p50|ms|lower"
	"wrk1-p99|  latency p99|ms|lower"
	"wrk1-cpu|  guest CPU per request|us|lower"
	"wrk1-busy|  guest CPU busy|%|none"
	"wrk8|wrk GET / -c8|req/s|higher"
	"wrk8-p50|  latency p50|ms|lower"
	"wrk8-p99|  latency p99|ms|lower"
	"wrk8-cpu|  guest CPU per request|us|lower"
	"wrk8-busy|  guest CPU busy|%|none"
	"http-guest-tx|HTTP GET 64 MiB, guest TX|MB/s|higher"
	"http-guest-tx-cpu|  guest CPU per MB|ms|lower"
	"http-guest-tx-busy|  guest CPU busy|%|none"
	"http-guest-rx|HTTP POST 64 MiB, guest RX|MB/s|higher"
	"http-guest-rx-cpu|  guest CPU per MB|ms|lower"
	"http-guest-rx-busy|  guest CPU busy|%|none"
	"guest-tx|raw TCP guest TX|MB/s|higher"
	"guest-tx-cpu|  guest CPU per MB|ms|lower"
	"guest-tx-busy|  guest CPU busy|%|none"
	"guest-rx|raw TCP guest RX|MB/s|higher"
	"guest-rx-cpu|  guest CPU per MB|ms|lower"
	"guest-rx-busy|  guest CPU busy|%|none"
)

# print_table prints the medians of every phase run.
print_table() {
	local phase row name label unit better l g
	printf '\nmedians of %s round(s); timed measurements %ss each; MB = 10^6 bytes\n' "$rounds" "$seconds"
	printf 'QEMU TCG (-cpu max, 1 vCPU, 512M), virtio-net-pci on a tap backend; TX/RX from the guest'"'"'s side\n'
	printf 'ratio: above 1 means govirtio did better (govirtio/linux for rates, linux/govirtio for times)\n'
	printf 'guest CPU: the guest'"'"'s busy CPU time over the measurement (GET /cpu before and after) per unit of work,\n'
	printf '  and its share of the elapsed time; Linux'"'"'s from /proc/stat, sampled at its tick\n\n'
	printf '%-40s %10s %10s %10s\n' "" "linux" govirtio ratio
	for phase in "${phases[@]}"; do
		printf '%s\n' "${phase_title[$phase]}${phase_props[$phase]:+ (${phase_props[$phase]})}"
		for row in "${rows[@]}"; do
			IFS='|' read -r name label unit better <<<"$row"
			# Word splitting of the lists is intended: one value a word.
			# shellcheck disable=SC2086
			{
				l=$(median ${results[$phase.linux.$name]:-})
				g=$(median ${results[$phase.govirtio.$name]:-})
			}
			# A row without a ratio ends after the govirtio column.
			printf '  %-38s %10s %10s %10s\n' "$label ($unit)" "$(num "$l")" "$(num "$g")" "$(ratio "$better" "$l" "$g")" |
				sed 's/ *$//'
		done
	done
	printf '\nlinux: %s, examples/throughput -tags hostnet (%s)\n' "$kver" "$linux_server_desc"
	printf 'govirtio: %s\n' "$image_desc"
}

# print_rounds prints every figure of every round.
print_rounds() {
	local phase row name g l
	printf '\nper round:\n'
	for phase in "${phases[@]}"; do
		printf '%s\n' "${phase_title[$phase]}"
		for row in "${rows[@]}"; do
			name=${row%%|*}
			for g in "${guests[@]}"; do
				l=${results[$phase.$g.$name]:-}
				printf '  %-18s %-9s %s\n' "$name" "$g" "${l% }"
			done
		done
	done
}

# ---------------------------------------------------------------------------
# Main.

install_missing
command -v "$go" >/dev/null 2>&1 || die "$go not found (set GO)"
command -v "$qemu" >/dev/null 2>&1 || die "$qemu not found (set QEMU)"
command -v wrk >/dev/null 2>&1 || die "wrk not found (package wrk)"
command -v ping >/dev/null 2>&1 || die "ping not found (package iputils-ping)"

work=$(mktemp -d "${TMPDIR:-/tmp}/linux-compare.XXXXXX")

log "building the client"
(cd -- "$root" && "$go" build -o "$work/client" ./bench/client)

if [[ -n ${LINUX_SERVER:-} ]]; then
	[[ -f $LINUX_SERVER && -x $LINUX_SERVER ]] || die "LINUX_SERVER=$LINUX_SERVER is not an executable file"
	linux_server=$LINUX_SERVER
	linux_server_desc="LINUX_SERVER=$LINUX_SERVER"
else
	log "building examples/throughput for the Linux guest (-tags hostnet)"
	(cd -- "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$go" build -tags hostnet -o "$work/throughput-hostnet" ./examples/throughput)
	linux_server=$work/throughput-hostnet
	linux_server_desc="built from $root"
fi

if [[ -n ${GOVIRTIO_IMAGE:-} ]]; then
	[[ -f $GOVIRTIO_IMAGE ]] || die "GOVIRTIO_IMAGE=$GOVIRTIO_IMAGE is not a file"
	image=$(cd -- "$(dirname -- "$GOVIRTIO_IMAGE")" && pwd)/${GOVIRTIO_IMAGE##*/}
	image_desc="GOVIRTIO_IMAGE=$GOVIRTIO_IMAGE"
else
	log "building the govirtio image (make image EXAMPLE=throughput)"
	make -C "$root" --no-print-directory image EXAMPLE=throughput >&2
	image=$root/build/throughput.img
	image_desc="examples/throughput built from $root"
fi

kver=$(find_kernel)
kernel=/boot/vmlinuz-$kver
log "building the Linux initramfs for $kver"
build_initramfs "$kver" "$linux_server" "$work/initrd.gz"

for g in "${guests[@]}"; do
	setup_netns "${ns[$g]}"
done

for phase in "${phases[@]}"; do
	log "${phase_title[$phase]}: booting both guests${phase_props[$phase]:+ with ${phase_props[$phase]}}"
	start_guests "$phase"
	for g in "${guests[@]}"; do
		wait_ready "$g"
	done
	log "${phase_title[$phase]}: $rounds round(s), ${seconds}s per timed measurement"
	measure_phase "$phase"
	stop_all
done

print_table
print_rounds
