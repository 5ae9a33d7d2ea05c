#!/usr/bin/env bash
# cri.sh: side-by-side CRI benchmark. Runs `critest -benchmark` against
# slipwayd and then against containerd's own CRI plugin (a second containerd
# with its own root, state and sockets), one after the other on this machine,
# with the same CNI conflist, the same CNI plugins and the same loopback test
# registry, and prints p50/p90 per operation for both and the p50 ratio.
#
#   bash hack/bench/cri.sh [--samples 40] [--parallel 2] [--focus REGEXP]
#                          [--rounds 1] [--image-parallel 1]
#                          [--out FILE.md] [--keep] [--no-build]
#                          [--runtimes slipwayd,containerd] [--slipwayd-args '...']
#                          [--trace-cni] [--sections cri,scale,memory]
#                          [--scale-pods 20] [--scale-containers 10]
#                          [--scale-samples 300] [--memory-pods 20]
#                          [--kubelet-pods 10,50] [--profile DIR]
#
# Each critest benchmark spec runs as its own critest invocation (a "group"),
# so one failing group does not hide the others:
#
#   pod           [k8s.io] PodSandbox ... benchmark about lifecycle of PodSandbox
#   container     [k8s.io] Container ... benchmark about basic operations on Container
#   podcontainer  [k8s.io] PodSandbox ... benchmark about start a container from scratch (1 sample)
#   image         [k8s.io] Image ... benchmark about basic operations on Image
#   imagelist     [k8s.io] Image ... benchmark about listing Image
#
# --focus is an extended regexp matched against those spec texts (e.g.
# 'PodSandbox|Container', 'lifecycle of PodSandbox', 'Image'); default: all.
#
# --rounds N alternates the runtimes N times (a fresh daemon each time) and
# pools the samples, so load that drifts during the run (other jobs on the
# machine) weighs on both runtimes alike. --samples is per round.
#
# --image-parallel (default 1) is the parallelism of the image groups:
# critest pulls and removes the same image in every sample, so parallel
# samples remove each other's image mid-pull and the pull times mix fresh
# pulls with no-ops.
#
# --trace-cni runs every CNI plugin (for both runtimes) through a timing
# wrapper (hack/bench/cnitrace) and adds plugin run times to the report: it
# shows how much of RunPodSandbox/StopPodSandbox is CNI, at the cost of about
# a millisecond per plugin run, so keep it off for headline numbers.
#
# --sections picks what runs on each fresh daemon, in this order (default: cri):
#   memory  hack/bench/crimeasure memory: summed RSS and PSS of the runtime's
#           non-workload processes (daemon(s), shims, loggers, infra/pause)
#           before and after --memory-pods pods with one sleep container each
#   scale   hack/bench/crimeasure scale: --scale-pods pods x
#           --scale-containers sleep containers, then --scale-samples calls
#           each of ListContainers, ListPodSandbox, ContainerStatus,
#           ListContainerStats, ListPodSandboxStats, timed one at a time
#   kubelet a real kubelet v1.37 standalone on the runtime, static pods of
#           a web server with an exec readiness probe and a logging
#           busybox, --kubelet-pods of them at once per count; pod start
#           from the runtime's CRI records (hack/bench/kubelet.sh)
#   cri     the critest benchmark groups above
# Their tables follow the critest table in --out.
#
# --profile DIR starts slipwayd with --metrics-pprof (pprof on its loopback
# metrics listener) and, while each critest group (and the memory and scale
# sections) runs on it, saves
# back-to-back 5 s CPU profiles and execution traces into DIR/round-N/GROUP/
# (cpu-*.pprof merged into cpu.pprof with a cpu-top.txt summary; trace-*.out
# for `go tool trace`).
#
# The table goes to stdout and, as markdown, to --out (default
# /tmp/slipway-cri-bench-DATE.md, beside the work dir); --keep keeps the work
# dir: critest logs, JSON results, runtime logs, per round and group.
# --no-build uses the existing bin/slipwayd; --slipwayd-args adds flags.
#
# Run as root. Ends only the processes it started (by pid) and removes
# everything it made: processes, shims that serve its containerd sockets,
# mounts under its work dir, its bridge, the iptables rules and chains that
# mention its network or subnet, the empty cgroups of its containers (by the
# IDs its containerd instances report), and the work dir (unless --keep).
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/../.."
repo=$PWD

samples=40
parallel=2
rounds=1
image_parallel=1
focus=''
out=''
keep=0
build=1
runtimes='slipwayd,containerd'
slipwayd_args=''
trace_cni=0
sections=cri
scale_pods=20
scale_containers=10
scale_samples=300
memory_pods=20
kubelet_pods=10,50
profile_dir=''

usage() { sed -n '2,/^set -euo/p' "$script" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "cri.sh: $*" >&2; exit 1; }
log() { echo "cri.sh: $*" >&2; }

while (($#)); do
	case $1 in
	--samples) samples=${2:?}; shift 2 ;;
	--parallel) parallel=${2:?}; shift 2 ;;
	--rounds) rounds=${2:?}; shift 2 ;;
	--image-parallel) image_parallel=${2:?}; shift 2 ;;
	--focus) focus=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--no-build) build=0; shift ;;
	--runtimes) runtimes=${2:?}; shift 2 ;;
	--slipwayd-args) slipwayd_args=${2:?}; shift 2 ;;
	--trace-cni) trace_cni=1; shift ;;
	--sections) sections=${2:?}; shift 2 ;;
	--scale-pods) scale_pods=${2:?}; shift 2 ;;
	--scale-containers) scale_containers=${2:?}; shift 2 ;;
	--scale-samples) scale_samples=${2:?}; shift 2 ;;
	--memory-pods) memory_pods=${2:?}; shift 2 ;;
	--kubelet-pods) kubelet_pods=${2:?}; shift 2 ;;
	--profile) profile_dir=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ $samples =~ ^[1-9][0-9]*$ ]] || die "--samples must be a positive integer"
[[ $parallel =~ ^[1-9][0-9]*$ ]] || die "--parallel must be a positive integer"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $image_parallel =~ ^[1-9][0-9]*$ ]] || die "--image-parallel must be a positive integer"
for n in "$scale_pods" "$scale_containers" "$scale_samples" "$memory_pods"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "--scale-* and --memory-pods must be positive integers"
done
declare -A want_section=()
IFS=, read -r -a section_list <<<"$sections"
for sec in "${section_list[@]}"; do
	[[ $sec == cri || $sec == scale || $sec == memory || $sec == kubelet ]] || die "unknown section $sec (cri, scale, memory, kubelet)"
	want_section[$sec]=1
done
if [[ -n $profile_dir ]]; then
	mkdir -p "$profile_dir" && profile_dir=$(realpath "$profile_dir")
	command -v curl >/dev/null || die "--profile needs curl"
	slipwayd_args+=" --metrics-pprof"
fi
((EUID == 0)) || die "run as root (containers, network namespaces, mounts)"
# shellcheck source=hack/bench/containerd-config.sh
source "$repo/hack/bench/containerd-config.sh"
# shellcheck source=hack/bench/pprof.sh
source "$repo/hack/bench/pprof.sh"
# shellcheck source=hack/bench/kubelet.sh
source "$repo/hack/bench/kubelet.sh"
if [[ -n ${want_section[kubelet]:-} ]]; then
	[[ $kubelet_pods =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--kubelet-pods must be a comma-separated list of positive integers"
	command -v kubelet >/dev/null || die "kubelet not found in PATH (make deps builds it)"
	log "kubelet $(kubelet_version)"
fi
for tool in critest crictl containerd containerd-shim-runc-v2 runc jq iptables-save ip timeout; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH (make deps installs the pinned tools)"
done

# The run's own pod network: bridge, network name and subnet that nothing
# else on the node uses (hack/critest.sh uses swcritest0 and 10.253.0.0/16).
bridge=swbench0
netname=slipway-bench
subnet=10.254.0.0/16
subnet_re='10\.254\.'
net_re="$netname|$bridge|$subnet_re"
cni_bin_dir=/opt/cni/bin
sandbox_image=registry.k8s.io/pause:3.10.2
container_image=registry.k8s.io/e2e-test-images/busybox:1.29-2
pull_image=public.ecr.aws/docker/library/busybox:1
listing_images=(
	public.ecr.aws/docker/library/busybox:1.35.0-glibc
	public.ecr.aws/docker/library/busybox:1-uclibc
	public.ecr.aws/docker/library/busybox:1
	public.ecr.aws/docker/library/busybox:1-glibc
	public.ecr.aws/docker/library/busybox:1-musl
)

if ip link show "$bridge" >/dev/null 2>&1; then
	die "bridge $bridge exists: another benchmark run is going on (or left it); not touching it"
fi
if ip route show | grep -q "^${subnet_re}"; then
	die "a route into $subnet exists; this run needs the subnet to itself"
fi

work=$(mktemp -d /tmp/slipway-bench.XXXXXX)
stamp=$(date +%Y%m%d-%H%M%S)
[[ -n $out ]] || out=$(dirname "$work")/slipway-cri-bench-$stamp.md
results=$work/results
mkdir -p "$results"

# Groups: name, spec regexp (for --ginkgo.skip of the others), spec text (for --focus).
group_names=(pod container podcontainer image imagelist)
declare -A group_re=(
	[pod]='lifecycle of PodSandbox'
	[container]='basic operations on Container'
	[podcontainer]='start a container from scratch'
	[image]='basic operations on Image'
	[imagelist]='listing Image'
)
declare -A group_text=(
	[pod]='[k8s.io] PodSandbox benchmark about operations on PodSandbox benchmark about lifecycle of PodSandbox'
	[container]='[k8s.io] Container benchmark about operations on Container benchmark about basic operations on Container'
	[podcontainer]='[k8s.io] PodSandbox benchmark about start a container from scratch benchmark about start a container from scratch'
	[image]='[k8s.io] Image benchmark about operations on Image benchmark about basic operations on Image'
	[imagelist]='[k8s.io] Image benchmark about operations on Image benchmark about listing Image'
)
selected=()
for g in "${group_names[@]}"; do
	if [[ -z $focus || ${group_text[$g]} =~ $focus ]]; then
		selected+=("$g")
	fi
done
((${#selected[@]})) || die "--focus '$focus' selects no benchmark group"

# ---------------------------------------------------------------------------
# Processes and cleanup

pids=()        # long-running processes this script started, in start order
rt_pid=''      # the runtime under test
rt_sock=''     # its CRI socket
rt_name=''
watch_pid=''   # ctrwatch on the runtime's containerd
critest_pid='' # the critest run going on (its timeout wrapper)
prof_pids=()   # the --profile collectors going on

# stop_pid PID [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
	local pid=$1 secs=${2:-30} i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid ignored SIGTERM for ${secs}s; SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

crictl_rt() {
	timeout 180 crictl --config "$work/crictl.yaml" --runtime-endpoint "unix://$rt_sock" --image-endpoint "unix://$rt_sock" --timeout 120s "$@"
}

# remove_all_pods: stops and removes every pod of the runtime under test
# (all of them are this run's: the runtime is this run's own).
remove_all_pods() {
	[[ -n $rt_sock && -S $rt_sock ]] || return 0
	local ids left err=$work/crictl-pods.err
	# Only stdout holds IDs: crictl warns on stderr.
	if ! ids=$(crictl_rt pods -q 2>"$err"); then
		log "$rt_name: listing pods failed: $(cat "$err")"
		return 0
	fi
	left=$(grep -c . <<<"$ids") || true
	if ((left > 0)); then
		log "$rt_name: removing $left leftover pod(s)"
		crictl_rt rmp -a -f >/dev/null 2>&1 || log "$rt_name: crictl rmp -a -f failed"
	fi
}

# stop_runtime: removes its pods, then SIGTERM by pid.
stop_runtime() {
	[[ -n $rt_pid ]] || return 0
	remove_all_pods
	log "stopping $rt_name (pid $rt_pid)"
	stop_pid "$rt_pid" 60
	[[ -n $watch_pid ]] && stop_pid "$watch_pid" 10
	rt_pid='' rt_sock='' rt_name='' watch_pid=''
}

# watch_containerd SOCKET: records the IDs of the containers it creates.
watch_containerd() {
	wait_for "$1" 60 || return 1
	"$work/ctrwatch" --address "$1" --out "$work/container-ids" 2>>"$work/ctrwatch.log" &
	watch_pid=$!
}

# kill_my_shims: containerd shims whose -address is one of this run's sockets.
kill_my_shims() {
	local p args
	for p in /proc/[0-9]*; do
		args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $args == *containerd-shim* && $args == *"-address $work/"* ]] || continue
		log "killing leftover shim ${p#/proc/}: $args"
		kill -KILL "${p#/proc/}" 2>/dev/null || true
	done
}

# kill_my_containers: containers left in this run's runc roots.
kill_my_containers() {
	local root id
	for root in "$work"/ctd-run/runc/*; do
		[[ -d $root ]] || continue
		for id in $(runc --root "$root" list -q 2>/dev/null); do
			log "removing leftover container $id (runc root $root)"
			runc --root "$root" kill "$id" KILL 2>/dev/null || true
			runc --root "$root" delete -f "$id" 2>/dev/null || true
		done
	done
}

unmount_mine() {
	local m found
	# Deepest first; a mount may hide others, so go round a few times.
	for _ in 1 2 3; do
		found=0
		while read -r m; do
			found=1
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
		done < <(awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
		((found)) || break
	done
}

# clean_my_cgroups: removes the empty cgroups of the containers this run's
# containerd instances created (IDs recorded by hack/bench/ctrwatch): a
# RunPodSandbox cancelled mid-way (critest dies when a group fails) can leave
# one behind. rmdir fails on a cgroup holding a process, and the IDs are
# only ever this run's, so nothing else on the node is touched.
clean_my_cgroups() {
	[[ -s $work/container-ids ]] || return 0
	local id d
	for id in $(awk '{print $2}' "$work/container-ids" | sort -u); do
		[[ $id =~ ^[A-Za-z0-9_.-]+$ ]] || continue
		while read -r d; do
			[[ -n $d ]] || continue
			if [[ -s $d/cgroup.procs ]]; then
				log "cgroup $d still has processes; leaving it"
				continue
			fi
			log "removing empty cgroup left by the run: $d"
			rmdir "$d" 2>/dev/null || log "could not remove $d"
		done < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 5 -type d -name "$id" 2>/dev/null | sort -r)
	done
}

# safe_rm DIR...: rm -rf that refuses a tree with anything still mounted in it.
safe_rm() {
	local d
	for d in "$@"; do
		[[ -e $d ]] || continue
		if awk -v w="$d/" 'index($5, w) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
			log "not removing $d: something is still mounted under it"
			continue
		fi
		rm -rf --one-file-system "$d" || log "could not remove all of $d"
	done
}

# clean_iptables: deletes rules mentioning this run's network name, bridge or
# subnet, and the CNI-* chains those rules live in or jump to.
clean_iptables() {
	local table line chain target
	for table in nat filter mangle; do
		local dump
		dump=$(iptables-save -t "$table" 2>/dev/null) || continue
		declare -A mine=()
		# Chains holding a rule about this network (bridge ipMasq chains,
		# portmap's per-container chains).
		while read -r line; do
			chain=$(awk '{print $2}' <<<"$line")
			[[ $chain == CNI-* && $chain != CNI-HOSTPORT-* ]] && mine[$chain]=1
		done < <(grep -E -- "^-A " <<<"$dump" | grep -E -- "$net_re" || true)
		# Delete rules in other chains that mention the network or jump to its chains.
		while read -r line; do
			[[ -n $line ]] || continue
			chain=$(awk '{print $2}' <<<"$line")
			[[ -n ${mine[$chain]:-} ]] && continue
			target=$(sed -n 's/.* -j \([^ ]*\).*/\1/p' <<<"$line")
			if [[ $line =~ $net_re || -n ${mine[$target]:-} ]]; then
				log "iptables -t $table: deleting ${line#-A }"
				eval "iptables -t $table -D ${line#-A }" 2>/dev/null || log "could not delete: $line"
			fi
		done < <(grep -E -- "^-A " <<<"$dump" || true)
		for chain in "${!mine[@]}"; do
			log "iptables -t $table: removing chain $chain"
			iptables -t "$table" -F "$chain" 2>/dev/null || true
			iptables -t "$table" -X "$chain" 2>/dev/null || log "could not remove chain $chain"
		done
		unset mine
	done
}

cleaned=0
cleanup() {
	local rc=$?
	((cleaned)) && return
	cleaned=1
	set +e
	[[ -n $critest_pid ]] && stop_pid "$critest_pid" 40
	for p in "${prof_pids[@]}"; do stop_pid "$p" 10; done
	stop_kubelet
	stop_runtime
	kill_my_containers
	kill_my_shims
	clean_my_cgroups
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]}" 30
	done
	unmount_mine
	ip link del "$bridge" 2>/dev/null
	clean_iptables
	if ((keep)); then
		log "kept $work"
	else
		safe_rm "$work"
	fi
	return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for PATH [SECONDS]: waits for PATH to exist.
wait_for() {
	local secs=${2:-60} i
	for ((i = 0; i < secs * 10; i++)); do
		[[ -e $1 ]] && return 0
		sleep 0.1
	done
	log "$1 did not appear within ${secs}s"
	return 1
}

# wait_ready: waits until the runtime answers Status with RuntimeReady and
# NetworkReady (containerd's CRI loads the CNI config asynchronously).
wait_ready() {
	local info i
	for ((i = 0; i < 600; i++)); do
		if info=$(crictl_rt info 2>/dev/null) &&
			[[ $(jq -r '[.status.conditions[] | select(.type == "RuntimeReady" or .type == "NetworkReady") | .status] | all' <<<"$info") == true ]]; then
			return 0
		fi
		sleep 0.1
	done
	log "$rt_name is not ready after 60s: $(crictl_rt info 2>&1 | head -c 2000)"
	return 1
}

# ---------------------------------------------------------------------------
# Build, registry, network

if ((build)); then
	log "make build"
	make -s build >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "make build failed"; }
fi
slipwayd=$repo/bin/slipwayd
[[ -x $slipwayd && -x $repo/bin/slipway-infra ]] || die "$slipwayd or bin/slipway-infra missing (drop --no-build)"
go build -o "$work/testimages" ./hack/testimages
go build -o "$work/report" ./hack/bench/report
go build -o "$work/ctrwatch" ./hack/bench/ctrwatch
go build -o "$work/crimeasure" ./hack/bench/crimeasure

"$work/testimages" --addr 127.0.0.1:0 --hosts-dir "$work/certs.d" --addr-file "$work/registry.addr" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_for "$work/registry.addr" 120 || { tail -n 20 "$work/registry.log" >&2; die "test registry did not start"; }
log "test registry on $(cat "$work/registry.addr")"

: >"$work/crictl.yaml" # no /etc/crictl.yaml defaults, no warning about its absence

if ((trace_cni)); then
	real_cni_bin_dir=$cni_bin_dir
	cni_bin_dir=$work/cni-trace
	mkdir -p "$cni_bin_dir"
	go build -o "$cni_bin_dir/cnitrace" ./hack/bench/cnitrace
	echo "$real_cni_bin_dir" >"$cni_bin_dir/real-dir"
	: >"$cni_bin_dir/trace.log"
	for plugin in "$real_cni_bin_dir"/*; do
		[[ -f $plugin && -x $plugin ]] && ln "$cni_bin_dir/cnitrace" "$cni_bin_dir/${plugin##*/}"
	done
fi

mkdir -p "$work/net.d" "$work/ipam"
cat >"$work/net.d/10-$netname.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "$netname",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$work/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF

# ---------------------------------------------------------------------------
# Runtimes

start_slipwayd() {
	rt_name=slipwayd
	rt_sock=$work/sw-run/slipway.sock
	rt_log=$work/slipwayd.log
	# shellcheck disable=SC2086 # --slipwayd-args is a word list
	"$slipwayd" --root "$work/sw-root" --state "$work/sw-run" --registry-config-path "$work/certs.d" \
		--cni-conf-dir "$work/net.d" --cni-bin-dirs "$cni_bin_dir" --cgroup-driver cgroupfs \
		--metrics-address 127.0.0.1:0 --log-level debug $slipwayd_args >"$rt_log" 2>&1 &
	rt_pid=$!
	watch_containerd "$work/sw-run/containerd/containerd.sock" || { tail -n 50 "$rt_log" >&2; return 1; }
	wait_for "$rt_sock" 120 || { tail -n 50 "$rt_log" >&2; return 1; }
}

start_containerd() {
	rt_name=containerd
	local root=$work/ctd-root state=$work/ctd-run
	rt_sock=$state/containerd.sock
	rt_log=$work/containerd.log
	mkdir -p "$root" "$state"
	containerd_cri_config "$root" "$state" "$work/certs.d" "$work/net.d" "$cni_bin_dir" "$sandbox_image" >"$work/containerd.toml"
	containerd --config "$work/containerd.toml" >"$rt_log" 2>&1 &
	rt_pid=$!
	watch_containerd "$rt_sock" || { tail -n 50 "$rt_log" >&2; return 1; }
}

# prepare GROUP: the images the group needs present (and absent).
prepare() {
	local g=$1 want=()
	[[ $rt_name == containerd ]] && want+=("$sandbox_image")
	case $g in
	container | podcontainer) want+=("$container_image") ;;
	image | imagelist)
		# The pull benchmark's image shares its layers with the container
		# image: remove it so every pull downloads and unpacks them.
		crictl_rt rmi "$container_image" "${listing_images[@]}" >/dev/null 2>&1 || true
		;;
	esac
	local img
	for img in "${want[@]}"; do
		crictl_rt inspecti "$img" >/dev/null 2>&1 || crictl_rt pull "$img" >/dev/null ||
			log "$rt_name: pulling $img failed"
	done
}

# run_group GROUP ROUND: one critest invocation for one benchmark spec.
run_group() {
	local g=$1 dir=$results/$rt_name/$1/round-$2
	mkdir -p "$dir"
	local pods=0 imgs=0 ctrs=0 skip='' other
	case $g in
	pod) pods=$samples ;;
	container) ctrs=$samples ;;
	image | imagelist) imgs=$samples ;;
	esac
	for other in "${group_names[@]}"; do
		[[ $other == "$g" ]] && continue
		skip+=${skip:+|}${group_re[$other]}
	done
	{
		echo "containersNumber: $ctrs"
		echo "containersNumberParallel: $parallel"
		echo "containerBenchmarkTimeoutSeconds: 300" # critest's pod benchmark uses this one too
		echo "podsNumber: $pods"
		echo "podsNumberParallel: $parallel"
		echo "podBenchmarkTimeoutSeconds: 300"
		echo "imagesNumber: $imgs"
		echo "imagesNumberParallel: $image_parallel"
		echo "imageBenchmarkTimeoutSeconds: 120"
		echo "imagePullingBenchmarkImage: $pull_image"
		echo "imageListingBenchmarkImages:"
		printf '  - %s\n' "${listing_images[@]}"
		echo "podContainerStartBenchmarkTimeoutSeconds: 60"
	} >"$dir/params.yaml"

	prepare "$g"
	local off cni_off=0
	off=$(stat -c %s "$rt_log")
	((trace_cni)) && cni_off=$(stat -c %s "$cni_bin_dir/trace.log")
	case $g in
	image | imagelist) log "$rt_name: $g (${group_re[$g]}): $samples samples, parallel $image_parallel" ;;
	podcontainer) log "$rt_name: $g (${group_re[$g]}): 1 sample" ;;
	*) log "$rt_name: $g (${group_re[$g]}): $samples samples, parallel $parallel" ;;
	esac
	local rc=0 start=$SECONDS
	# In the background, and waited for: bash runs the INT/TERM traps (and
	# so the cleanup) at once during `wait`, not after a foreground child.
	timeout --kill-after=30 $((600 + samples * 30)) critest -benchmark --config "$work/crictl.yaml" \
		--runtime-endpoint "unix://$rt_sock" --image-endpoint "unix://$rt_sock" \
		--benchmarking-output-dir "$dir" --benchmarking-params-file "$dir/params.yaml" \
		--ginkgo.skip "$skip" --ginkgo.json-report "$dir/ginkgo.json" --ginkgo.no-color \
		>"$dir/critest.log" 2>&1 &
	critest_pid=$!
	[[ -n $profile_dir && $rt_name == slipwayd ]] && pprof_start "$profile_dir/round-$2/$g" "$rt_log"
	wait "$critest_pid" || rc=$?
	critest_pid=
	((${#prof_pids[@]})) && pprof_stop "$profile_dir/round-$2/$g"
	tail -c +$((off + 1)) "$rt_log" >"$dir/server.log"
	((trace_cni)) && tail -c +$((cni_off + 1)) "$cni_bin_dir/trace.log" >"$dir/cni.log"
	if ((rc == 0)); then
		echo ok >"$dir/status"
		log "$rt_name: $g done in $((SECONDS - start))s"
	else
		local why="critest exit $rc" rpcerr
		((rc == 124)) && why="critest timed out"
		rpcerr=$(grep -o -m1 -E 'rpc error: code = [A-Za-z]+ desc = [^"]*' "$dir/critest.log" | head -n1 | cut -c1-300) || true
		echo "failed ($why)${rpcerr:+: $rpcerr}" >"$dir/status"
		log "$rt_name: $g FAILED ($why) after $((SECONDS - start))s${rpcerr:+: $rpcerr}"
	fi
	remove_all_pods
}

# run_measure memory|scale ROUND: hack/bench/crimeasure on the runtime under test.
run_measure() {
	local kind=$1 round=$2 dir=$work/measure/$rt_name/$1 rc=0 start=$SECONDS
	mkdir -p "$dir" "$work/pod-logs"
	local args=(-endpoint "unix://$rt_sock" -image "$container_image" -log-dir "$work/pod-logs" -out "$dir/round-$round.json")
	case $kind in
	memory)
		log "$rt_name: memory: $memory_pods pods, one sleep container each"
		args+=(-pods "$memory_pods" -daemon-pid "$rt_pid" -match "-address $work/")
		;;
	scale)
		log "$rt_name: scale: $scale_pods pods x $scale_containers containers, $scale_samples calls per operation"
		args+=(-pods "$scale_pods" -containers "$scale_containers" -samples "$scale_samples")
		;;
	esac
	[[ $rt_name == containerd ]] && { crictl_rt inspecti "$sandbox_image" >/dev/null 2>&1 || crictl_rt pull "$sandbox_image" >/dev/null || true; }
	# In the background and waited for, as critest is (see run_group).
	"$work/crimeasure" "$kind" "${args[@]}" >"$dir/round-$round.log" 2>&1 &
	critest_pid=$!
	[[ -n $profile_dir && $rt_name == slipwayd ]] && pprof_start "$profile_dir/round-$round/$kind" "$rt_log"
	wait "$critest_pid" || rc=$?
	critest_pid=
	((${#prof_pids[@]})) && pprof_stop "$profile_dir/round-$round/$kind"
	if ((rc == 0)); then
		log "$rt_name: $kind done in $((SECONDS - start))s"
	else
		log "$rt_name: $kind FAILED (exit $rc): $(tail -n 3 "$dir/round-$round.log")"
		rm -f "$dir/round-$round.json"
	fi
	remove_all_pods
}

# run_runtime RUNTIME ROUND: a fresh daemon (its state from an earlier
# round removed), every selected group, stop.
run_runtime() {
	local rt=$1 round=$2 g
	log "=== $rt (round $round of $rounds)"
	if ! "start_$rt"; then
		for g in "${selected[@]}"; do
			mkdir -p "$results/$rt/$g/round-$round"
			echo "failed ($rt did not start)" >"$results/$rt/$g/round-$round/status"
		done
		stop_runtime
		return
	fi
	wait_ready || true
	[[ -n ${want_section[memory]:-} ]] && run_measure memory "$round"
	[[ -n ${want_section[scale]:-} ]] && run_measure scale "$round"
	[[ -n ${want_section[kubelet]:-} ]] && run_kubelet "$round"
	if [[ -n ${want_section[cri]:-} ]]; then
		for g in "${selected[@]}"; do
			run_group "$g" "$round"
		done
	fi
	mkdir -p "$results/$rt"
	cp "$rt_log" "$results/$rt/$rt-round-$round.log"
	stop_runtime
	kill_my_containers
	kill_my_shims
	clean_my_cgroups
	unmount_mine
	case $rt in
	slipwayd) safe_rm "$work/sw-root" "$work/sw-run" ;;
	containerd) safe_rm "$work/ctd-root" "$work/ctd-run" ;;
	esac
}

IFS=, read -r -a rts <<<"$runtimes"
for rt in "${rts[@]}"; do
	[[ $rt == slipwayd || $rt == containerd ]] || die "unknown runtime $rt (slipwayd, containerd)"
done
for ((round = 1; round <= rounds; round++)); do
	for rt in "${rts[@]}"; do
		run_runtime "$rt" "$round"
	done
done

# ---------------------------------------------------------------------------
# Report

{
	echo "# CRI benchmark: ${rts[*]}"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), $(containerd --version | awk '{print $1, $3}'), runc $(runc --version | awk 'NR==1{print $3}'), critest $(cat /usr/local/share/slipway/critest.version 2>/dev/null || echo '?'), slipwayd $(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?')."
	echo
	echo "\`critest -benchmark\`, $samples samples per round, $rounds round(s), parallel $parallel (image groups $image_parallel), one critest run per group, runtimes alternating, a fresh daemon each round;"
	echo "same CNI conflist (bridge $bridge, host-local $subnet, portmap; plugins in $cni_bin_dir) and loopback test registry."
	echo "containerd's CRI has its sandbox image ($sandbox_image) pulled before the runs; the pull benchmark pulls $pull_image"
	echo "(2 layers, 2.8 MB) with no image sharing its layers present. Client-side durations; percentiles are nearest-rank."
	((trace_cni)) && echo "CNI plugins ran through the timing wrapper (--trace-cni): about 1 ms more per plugin run, both runtimes."
	echo
} >"$work/head.md"
"$work/report" -results "$results" -runtimes "$runtimes" -md "$work/table.md"
if [[ -z ${want_section[cri]:-} ]]; then
	: >"$work/table.md"
	sed -i '/critest -benchmark/,$d' "$work/head.md"
	echo "Sections: $sections; $rounds round(s), runtimes alternating, a fresh daemon each round." >>"$work/head.md"
	echo >>"$work/head.md"
fi
: >"$work/measure.md"
if [[ -n ${want_section[scale]:-} || -n ${want_section[memory]:-} || -n ${want_section[kubelet]:-} ]]; then
	"$work/crimeasure" report -results "$work/measure" -runtimes "$runtimes" -md "$work/measure.md"
fi
cat "$work/head.md" "$work/table.md" "$work/measure.md" >"$out"
echo
echo "markdown: $out"
((keep)) && echo "results:  $results"
exit 0
