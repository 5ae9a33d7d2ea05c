#!/usr/bin/env bash
# build.sh: the builder benchmark of `make bench`. slipwayd's embedded
# BuildKit (through `slipway build`) against standalone buildkitd with its
# containerd worker (through buildctl), one after the other on this machine,
# on the same two-stage Go Dockerfile (hack/bench/goapp) and the same
# loopback registry:
#
#   cold        first build on a fresh daemon (Go toolchain image pulled,
#               module download, go build, busybox stage)
#   no-change   the same build again (median of 3)
#   edit        after a one-line edit of main.go (median of 3)
#   edit-to-pod one-line edit, then until StartContainer returns for a pod
#               running the new image (median of 2): slipway builds into the
#               node store (slipway build -t) and crictl starts the pod on
#               slipwayd; the reference builds on buildkitd, pushes to the
#               loopback registry, and crictl pulls it through containerd's
#               own CRI and starts the pod there.
#
#   bash hack/bench/build.sh [--rounds 2] [--out FILE.md] [--keep] [--profile DIR]
#
# --profile DIR starts slipwayd with --metrics-pprof and, while each kind of
# build runs on it, saves back-to-back 5 s CPU profiles and execution traces
# of slipwayd into DIR/round-N/KIND/ (cpu-*.pprof merged into cpu.pprof with
# a cpu-top.txt summary; trace-*.out for `go tool trace`), and the CPU time
# (user+system, in clock ticks) that slipwayd and its containerd, or
# buildkitd and its containerd, spent on each kind into DIR/daemon-cpu.txt.
#
# The Go toolchain image (golang:1.26) is made offline from the host's
# GOROOT (test/dockerfiles/gobench/golang.Dockerfile) and pushed to the
# registry once. Pods use the host network (no CNI, so nothing to tear down
# on the host's network); the app listens on 127.0.0.1:0.
#
# Run as root. Ends only the processes it started (by pid), the shims that
# serve its own containerd sockets, and removes its mounts and work dir.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/../.."
repo=$PWD
rounds=2
out=''
keep=0
profile_dir=''
usage() { sed -n '2,/^set -euo/p' "$script" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }
while (($#)); do
	case $1 in
	--rounds) rounds=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--profile) profile_dir=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
((EUID == 0)) || die "run as root"
for tool in buildkitd buildctl containerd crictl runc; do
	command -v "$tool" >/dev/null || die "$tool not found (make deps; INSTALL_BUILDKIT=1 for buildkitd)"
done
if [[ -n $profile_dir ]]; then
	mkdir -p "$profile_dir" && profile_dir=$(realpath "$profile_dir")
	command -v curl >/dev/null || die "--profile needs curl"
fi
BIN=${BIN:-$repo/bin}
[[ -x $BIN/slipwayd && -x $BIN/slipway ]] || die "$BIN/slipwayd or $BIN/slipway missing: make build"
# shellcheck source=hack/bench/containerd-config.sh
source "$repo/hack/bench/containerd-config.sh"
# shellcheck source=hack/bench/pprof.sh
source "$repo/hack/bench/pprof.sh"

work=$(mktemp -d /tmp/slipway-buildbench.XXXXXX)
[[ -n $out ]] || out=$work.md
pids=() # long-running processes started here, in start order
prof_pids=() # the --profile collectors going on
daemons=() # the build daemon and its containerd, for --profile's CPU times

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# kill_my_shims: shims whose -address is under this run's work dir.
kill_my_shims() {
	local p args
	for p in /proc/[0-9]*; do
		args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $args == *containerd-shim* && $args == *"-address $work/"* ]] || continue
		kill -KILL "${p#/proc/}" 2>/dev/null || true
	done
}

unmount_mine() {
	local m
	for _ in 1 2 3; do
		awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
		done
	done
}

# stop_all: pods of the CRI under test, then the daemons, newest first.
cri_sock=''
stop_all() {
	if [[ -n $cri_sock && -S $cri_sock ]]; then
		timeout 120 crictl --config "$work/crictl.yaml" --runtime-endpoint "unix://$cri_sock" rmp -af >/dev/null 2>&1 || true
	fi
	cri_sock=''
	local i
	for i in "${prof_pids[@]}"; do kill "$i" 2>/dev/null || true; wait "$i" 2>/dev/null || true; done
	prof_pids=() daemons=()
	for ((i = ${#pids[@]} - 1; i >= 1; i--)); do stop_pid "${pids[i]}"; done
	pids=("${pids[@]:0:1}") # the registry stays
	kill_my_shims
	for d in "$work"/*/state/runc/*; do
		[[ -d $d ]] || continue
		for id in $(runc --root "$d" list -q 2>/dev/null); do runc --root "$d" delete -f "$id" 2>/dev/null || true; done
	done
	unmount_mine
}

cleanup() {
	local rc=$?
	set +e
	stop_all
	((${#pids[@]})) && stop_pid "${pids[0]}"
	unmount_mine
	if ((keep)); then log "kept $work"; else
		awk -v w="$work/" 'index($5, w) == 1 {f = 1} END {exit !f}' /proc/self/mountinfo && log "not removing $work: mounts left" || rm -rf --one-file-system "$work"
	fi
	return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # PATH SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done
	log "$1 did not appear within $2s"
	return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The loopback registry (docker.io etc. mirrored to it) and the hosts
# directories: certs.d for slipwayd and containerd, buildkitd.toml.
go build -o "$work/testimages" ./hack/testimages
"$work/testimages" --addr 127.0.0.1:0 --hosts-dir "$work/certs.d" --addr-file "$work/registry.addr" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_for "$work/registry.addr" 120 || die "test registry did not start"
reg=$(cat "$work/registry.addr")
mkdir -p "$work/certs.d/$reg" "$work/cni"
: >"$work/crictl.yaml" # no /etc/crictl.yaml defaults, no warning about its absence
printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve", "push"]\n' "$reg" "$reg" >"$work/certs.d/$reg/hosts.toml"
printf '[registry."docker.io"]\n  mirrors = ["%s"]\n[registry."%s"]\n  http = true\n' "$reg" "$reg" >"$work/buildkitd.toml"
log "registry on $reg"

# start_slipwayd NAME [FLAGS...]: a fresh slipwayd in $work/NAME.
start_slipwayd() {
	local d=$work/$1
	shift
	mkdir -p "$d"
	[[ -n $profile_dir ]] && set -- --metrics-pprof "$@"
	"$BIN/slipwayd" --root "$d/root" --state "$d/run" --registry-config-path "$work/certs.d" \
		--cni-conf-dir "$work/cni" --cgroup-driver cgroupfs --metrics-address 127.0.0.1:0 "$@" >"$d/slipwayd.log" 2>&1 &
	pids+=($!)
	wait_for "$d/run/buildkit.sock" 120 || { tail -n 30 "$d/slipwayd.log" >&2; return 1; }
	local i
	for ((i = 0; i < 300; i++)); do
		if buildctl --addr "unix://$d/run/buildkit.sock" debug workers >/dev/null 2>&1; then
			daemons=("${pids[-1]}" "$(pgrep -P "${pids[-1]}" -x containerd || true)")
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# start_reference NAME: containerd (its own CRI) and buildkitd on it.
start_reference() {
	local d=$work/$1
	mkdir -p "$d/root" "$d/state"
	# The containerd side of the state dir is STATE (sockets, runc root).
	containerd_cri_config "$d/root" "$d/state" "$work/certs.d" "$work/cni" /opt/cni/bin registry.k8s.io/pause:3.10.2 >"$d/containerd.toml"
	containerd --config "$d/containerd.toml" >"$d/containerd.log" 2>&1 &
	pids+=($!)
	wait_for "$d/state/containerd.sock" 60 || { tail -n 30 "$d/containerd.log" >&2; return 1; }
	# The sandbox image is there before any timing, as on a node.
	crictl --config "$work/crictl.yaml" --runtime-endpoint "unix://$d/state/containerd.sock" --image-endpoint "unix://$d/state/containerd.sock" --timeout 120s \
		pull registry.k8s.io/pause:3.10.2 >/dev/null || { tail -n 30 "$d/containerd.log" >&2; return 1; }
	buildkitd --config "$work/buildkitd.toml" --root "$d/buildkitd" --addr "unix://$d/buildkitd.sock" \
		--oci-worker=false --containerd-worker=true --containerd-worker-addr "$d/state/containerd.sock" \
		>"$d/buildkitd.log" 2>&1 &
	pids+=($!)
	local i
	for ((i = 0; i < 300; i++)); do
		if buildctl --addr "unix://$d/buildkitd.sock" debug workers >/dev/null 2>&1; then
			daemons=("${pids[-1]}" "${pids[-2]}")
			return 0
		fi
		sleep 0.1
	done
	tail -n 30 "$d/buildkitd.log" >&2
	return 1
}

# The Go toolchain image, pushed to the registry as docker.io/library/golang:1.26.
goroot=$(go env GOROOT)
log "making the Go toolchain image from $goroot"
start_slipwayd setup --builder-only
"$BIN/slipway" build --addr "unix://$work/setup/run/buildkit.sock" --progress quiet \
	-f "$repo/test/dockerfiles/gobench/golang.Dockerfile" --build-arg "GOROOT_NAME=$(basename "$goroot")" \
	--output "type=registry,name=$reg/library/golang:1.26" "$(dirname "$goroot")" >"$work/setup.log" 2>&1 ||
	{ tail -n 30 "$work/setup.log" >&2; die "making the Go toolchain image failed"; }
stop_all
rm -rf "${work:?}/setup"

mkdir -p "$work/results"
# record SIDE KIND MS
record() { echo "$1 $2 $3" >>"$work/results/all"; }

# build_once SIDE CTX: one build of the app.
build_once() {
	case $1 in
	slipway) "$BIN/slipway" build --addr "unix://$work/sw/run/buildkit.sock" --progress quiet -t goapp:bench "$2" ;;
	buildkitd) buildctl --addr "unix://$work/ref/buildkitd.sock" build --progress quiet --frontend dockerfile.v0 \
		--local "context=$2" --local "dockerfile=$2" --output "type=image,name=docker.io/library/goapp:bench" ;;
	esac
}

# to_pod SIDE CTX N: build, (push, pull,) run a pod with the image.
to_pod() {
	local side=$1 ctx=$2 n=$3 image crictl_ep
	case $side in
	slipway)
		image=docker.io/library/goapp:bench
		crictl_ep=unix://$work/sw/run/slipway.sock
		"$BIN/slipway" build --addr "unix://$work/sw/run/buildkit.sock" --progress quiet -t goapp:bench "$ctx"
		;;
	buildkitd)
		image=$reg/library/goapp:bench
		crictl_ep=unix://$work/ref/state/containerd.sock
		buildctl --addr "unix://$work/ref/buildkitd.sock" build --progress quiet --frontend dockerfile.v0 \
			--local "context=$ctx" --local "dockerfile=$ctx" --output "type=image,name=$image,push=true,registry.insecure=true"
		crictl --config "$work/crictl.yaml" --runtime-endpoint "$crictl_ep" --image-endpoint "$crictl_ep" pull "$image" >/dev/null
		;;
	esac
	mkdir -p "$work/logs/$side-$n"
	cat >"$work/pod.json" <<-JSON
	{"metadata": {"name": "goapp-$n", "namespace": "bench", "uid": "goapp-$side-$n"},
	 "log_directory": "$work/logs/$side-$n",
	 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
	JSON
	cat >"$work/ctr.json" <<-JSON
	{"metadata": {"name": "app"}, "image": {"image": "$image"}, "log_path": "app.log",
	 "envs": [{"key": "LISTEN", "value": "127.0.0.1:0"}], "linux": {}}
	JSON
	local c=(crictl --config "$work/crictl.yaml" --runtime-endpoint "$crictl_ep" --image-endpoint "$crictl_ep" --timeout 120s) pod ctr
	pod=$("${c[@]}" runp "$work/pod.json")
	ctr=$("${c[@]}" create --no-pull "$pod" "$work/ctr.json" "$work/pod.json")
	"${c[@]}" start "$ctr" >/dev/null
}

# cpu_ticks: the user+system clock ticks the build daemon and its containerd
# have used so far.
cpu_ticks() {
	local sum=0 p
	for p in "${daemons[@]}"; do
		[[ -n $p && -r /proc/$p/stat ]] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$sum"
}

# profile_begin SIDE ROUND KIND: with --profile, notes the daemons' CPU time
# and, on slipwayd, starts back-to-back 5 s CPU profiles and execution
# traces into DIR/round-ROUND/KIND until profile_end.
ticks0=0
profile_begin() {
	[[ -n $profile_dir ]] || return 0
	ticks0=$(cpu_ticks)
	[[ $1 == slipway ]] || return 0
	pprof_start "$profile_dir/round-$2/$3" "$work/sw/slipwayd.log"
}

# profile_end SIDE ROUND KIND: records the daemons' CPU time for KIND, lets
# the last 5 s window finish and merges the CPU profiles.
profile_end() {
	[[ -n $profile_dir ]] || return 0
	echo "$1 round $2 $3: $(($(cpu_ticks) - ticks0)) ticks" >>"$profile_dir/daemon-cpu.txt"
	((${#prof_pids[@]})) || return 0
	pprof_stop "$profile_dir/round-$2/$3"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

# run_side SIDE ROUND
run_side() {
	local side=$1 r=$2 ctx=$work/ctx-$1-$2 t i nc=() ed=() tp=()
	log "=== $side (round $r of $rounds)"
	rm -rf "$ctx"
	cp -r "$repo/hack/bench/goapp" "$ctx"
	case $side in
	slipway) start_slipwayd sw; cri_sock=$work/sw/run/slipway.sock ;;
	buildkitd) start_reference ref; cri_sock=$work/ref/state/containerd.sock ;;
	esac
	profile_begin "$side" "$r" cold
	t=$(now_ms); build_once "$side" "$ctx" >"$work/build.log" 2>&1 || { tail -n 20 "$work/build.log" >&2; return 1; }
	record "$side" cold $(($(now_ms) - t))
	profile_end "$side" "$r" cold
	profile_begin "$side" "$r" no-change
	for i in 1 2 3; do
		t=$(now_ms); build_once "$side" "$ctx" >/dev/null 2>&1; nc+=($(($(now_ms) - t)))
	done
	profile_end "$side" "$r" no-change
	record "$side" no-change "$(median "${nc[@]}")"
	profile_begin "$side" "$r" edit
	for i in 1 2 3; do
		sed -i "s/^var greeting = \".*\"/var greeting = \"edit-$r-$i\"/" "$ctx/main.go"
		t=$(now_ms); build_once "$side" "$ctx" >/dev/null 2>&1; ed+=($(($(now_ms) - t)))
	done
	profile_end "$side" "$r" edit
	record "$side" edit "$(median "${ed[@]}")"
	profile_begin "$side" "$r" edit-to-pod
	for i in 1 2; do
		sed -i "s/^var greeting = \".*\"/var greeting = \"pod-$r-$i\"/" "$ctx/main.go"
		t=$(now_ms); to_pod "$side" "$ctx" "$r-$i" >"$work/pod.log" 2>&1 || { tail -n 20 "$work/pod.log" >&2; return 1; }
		tp+=($(($(now_ms) - t)))
		timeout 120 crictl --config "$work/crictl.yaml" --runtime-endpoint "unix://$cri_sock" rmp -af >/dev/null 2>&1 || true
	done
	profile_end "$side" "$r" edit-to-pod
	record "$side" edit-to-pod "$(median "${tp[@]}")"
	log "$side: cold $(awk -v s="$side" '$1 == s && $2 == "cold" {v = $3} END {print v}' "$work/results/all") ms, no-change ${nc[*]} ms, edit ${ed[*]} ms, edit-to-pod ${tp[*]} ms"
	stop_all
	rm -rf "$ctx" "${work:?}/sw" "${work:?}/ref"
}

# The side that goes first alternates by round, and each side starts after
# the previous one's writes are on disk (sync), so neither inherits the
# other's (or the setup's) disk writeback.
sync
for ((r = 1; r <= rounds; r++)); do
	order=(slipway buildkitd)
	((r % 2)) || order=(buildkitd slipway)
	for side in "${order[@]}"; do
		run_side "$side" "$r" || log "$side round $r FAILED"
		sync
	done
done

{
	echo "## Builder: a two-stage Go Dockerfile"
	echo
	echo "hack/bench/goapp (golang:1.26 made offline from the host's GOROOT, \`go mod download\` and \`go build\` with cache mounts, then a"
	echo "busybox stage). slipway: \`slipway build -t\` through slipwayd's embedded BuildKit (the image lands in the node store and is unpacked right after the build returns);"
	echo "buildkitd: \`buildctl build\` with image output through standalone buildkitd and its containerd worker. Edit-to-pod: a one-line"
	echo "edit of main.go, then until StartContainer returns for a host-network pod with the new image; for buildkitd that is build,"
	echo "push to the loopback registry, \`crictl pull\` through containerd's own CRI, then run the pod there. Milliseconds, per round"
	echo "(no-change and edit: median of 3; edit-to-pod: median of 2), fresh daemons each round, the side going first alternating."
	echo
	echo "| build | slipway per round | buildkitd per round | slipway mean | buildkitd mean | ratio |"
	echo "|---|---|---|--:|--:|--:|"
	for kind in cold no-change edit edit-to-pod; do
		awk -v k="$kind" '
			$2 == k && $1 == "slipway" {s = s (s == "" ? "" : ", ") $3; ss += $3; sn++}
			$2 == k && $1 == "buildkitd" {b = b (b == "" ? "" : ", ") $3; bs += $3; bn++}
			END {
				sm = sn ? ss / sn : 0; bm = bn ? bs / bn : 0
				printf "| %s | %s | %s | %.0f | %.0f | %s |\n", k, s, b, sm, bm, (sm && bm) ? sprintf("%.2fx", sm / bm) : "—"
			}' "$work/results/all"
	done
	echo
} >"$out"
cat "$out"
