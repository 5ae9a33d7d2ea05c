#!/usr/bin/env bash
# bench.sh: `make bench`. Runs every benchmark of hack/bench, slipwayd side
# by side with containerd's own CRI (and buildkitd), and writes
# docs/benchmarks.md: the machine, the versions, the date and the tables.
#
#   bash hack/bench/bench.sh [--out docs/benchmarks.md] [--sections cri,scale,memory,build,kubelet]
#                            [--rounds 2] [--samples 40] [--profile DIR] [--kubelet]
#                            [--no-build] [--lock FILE]
#
# Sections, each in its own piece holding the e2e lock (--lock FILE, default
# /tmp/slipway-e2e.lock; --lock '' takes none) only while it runs:
#   cri     critest -benchmark (hack/bench/cri.sh), --samples pods/containers/
#           images per round, parallel 2, p50 and p90
#   scale   200 running containers (20 pods x 10 sleep containers): p50 and p99
#           of the List and Status calls (hack/bench/crimeasure scale)
#   memory  RSS and PSS growth per idle pod over 20 pods (crimeasure memory)
#   build   cold, no-change and one-line-edit builds of a multi-stage Go
#           Dockerfile, and edit-to-running-pod (hack/bench/build.sh)
#   kubelet 10 and 50 two-container static pods through a real kubelet
#           v1.37 standalone, pod start from the runtime's CRI records
#           (hack/bench/kubelet.sh, through cri.sh --sections kubelet); the
#           kubelet comes from make deps (built here if it is missing)
#   none    no section: only the head (machine, versions, date)
# --rounds alternates the runtimes that many times in every section.
# --profile DIR saves CPU profiles and execution traces of slipwayd during
# the cri section (see cri.sh --profile). --kubelet adds the kubelet
# section to --sections.
#
# Nothing asserts a duration: the tables show what one run measured. Every
# piece removes what it made (processes, mounts, bridge, iptables rules,
# state directories) when it ends, however it ends.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/../.."
repo=$PWD

out=$repo/docs/benchmarks.md
sections=cri,scale,memory,build,kubelet
rounds=2
samples=40
profile=''
kubelet=0
lock=/tmp/slipway-e2e.lock
build=1

usage() { sed -n '2,/^set -euo/p' "$script" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }
while (($#)); do
	case $1 in
	--out) out=${2:?}; shift 2 ;;
	--sections) sections=${2:?}; shift 2 ;;
	--rounds) rounds=${2:?}; shift 2 ;;
	--samples) samples=${2:?}; shift 2 ;;
	--profile) profile=${2:?}; shift 2 ;;
	--kubelet) kubelet=1; shift ;;
	--no-build) build=0; shift ;;
	--lock) lock=${2?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
((EUID == 0)) || die "run as root"
declare -A want=()
IFS=, read -r -a list <<<"$sections"
for s in "${list[@]}"; do
	[[ $s == none ]] && continue # the head alone: machine, versions, date
	[[ $s == cri || $s == scale || $s == memory || $s == build || $s == kubelet ]] || die "unknown section $s"
	want[$s]=1
done
((kubelet)) && want[kubelet]=1
no_kubelet=''
if [[ -n ${want[kubelet]:-} ]] && ! command -v kubelet >/dev/null; then
	# make deps builds it; a tree whose install-deps.sh does not know
	# INSTALL_KUBELET cannot, and then the section says so instead of running.
	if grep -q INSTALL_KUBELET hack/install-deps.sh; then
		log "kubelet not in PATH: building it (INSTALL_KUBELET=1 hack/install-deps.sh)"
		INSTALL_KUBELET=1 bash hack/install-deps.sh || die "building kubelet failed"
	else
		no_kubelet="no kubelet in PATH, and this tree's hack/install-deps.sh cannot build one"
		log "kubelet section skipped: $no_kubelet"
	fi
fi

pieces=$(mktemp -d /tmp/slipway-benchmd.XXXXXX)
# The machine's load during the run, for the head: the 1-minute load
# average every 15 s (absolute times move with it; ratios less so).
(
	while :; do
		cut -d' ' -f1 /proc/loadavg >>"$pieces/load"
		sleep 15
	done
) &
load_pid=$!
trap 'kill "$load_pid" 2>/dev/null || true; rm -rf "$pieces"' EXIT

# locked CMD...: CMD holding the e2e lock (others' runs wait, and we wait for theirs).
locked() {
	if [[ -n $lock ]]; then
		flock "$lock" "$@"
	else
		"$@"
	fi
}

if ((build)); then
	log "make build"
	make -s build >"$pieces/build.log" 2>&1 || { cat "$pieces/build.log" >&2; die "make build failed"; }
fi

modver() { go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m {print $3}'; }
cgroup=v1
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && cgroup=v2
[[ $cgroup == v1 && -e /sys/fs/cgroup/unified/cgroup.controllers ]] && cgroup='v1 (hybrid)'
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (hack/bench/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'). Every ratio is slipwayd over the"
	echo "reference, measured in this one run, runtimes alternating round by round on the same machine; nothing here is asserted."
	echo "The machine may be shared: its load during the run is in the table below. Where the time goes, what was cut"
	echo "and what was measured and left: [performance.md](performance.md)."
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| machine | $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) memory |"
	echo "| kernel | $(uname -r), cgroup $cgroup |"
	echo "| slipway | $(git describe --always --dirty 2>/dev/null || echo '?') |"
	echo "| containerd | $(containerd --version | awk '{print $3}') |"
	echo "| runc | $(runc --version | awk 'NR == 1 {print $3}') |"
	echo "| CNI plugins | $(modver /opt/cni/bin/bridge github.com/containernetworking/plugins || echo '?') |"
	echo "| critest | $(cat /usr/local/share/slipway/critest.version 2>/dev/null || echo '?') |"
	# buildkitd is built inside its module directory (hack/install-deps.sh),
	# so its binary says "(devel)": the pinned version is the one installed.
	bk=$(modver "$(command -v buildkitd 2>/dev/null || echo /nonexistent)" github.com/moby/buildkit) || bk=""
	[[ -z $bk || $bk == '(devel)' ]] && bk="$(sed -n 's/^BUILDKIT_VERSION=//p' hack/install-deps.sh) (as pinned by hack/install-deps.sh)"
	echo "| buildkit (buildkitd, and slipwayd's embedded one) | $bk; slipwayd's: $(awk '$1 == "github.com/moby/buildkit" {print $2}' go.mod) |"
	if [[ -n ${want[kubelet]:-} && -z $no_kubelet ]]; then
		kv=$(go version -m "$(command -v kubelet)" 2>/dev/null | awk '($1 == "dep" || $1 == "mod") && $2 == "k8s.io/kubernetes" {print $3}')
		echo "| kubelet | ${kv:-$(kubelet --version 2>/dev/null | awk '{print $2}')} |"
	fi
	echo "| Go | $(go env GOVERSION) |"
	echo
} >"$pieces/00-head.md"

# piece NAME CMD...: runs one section, its markdown into $pieces/NAME.md
# (the command writes it); a failed section leaves a note instead.
piece() {
	local name=$1 start=$SECONDS
	shift
	log "=== $name"
	if locked "$@"; then
		log "$name done in $((SECONDS - start))s"
	else
		log "$name FAILED after $((SECONDS - start))s"
		printf '## %s\n\nThis section failed in this run (see the output of `make bench`).\n\n' "$name" >"$pieces/$name.md"
	fi
}

if [[ -n ${want[cri]:-} ]]; then
	args=(--no-build --rounds "$rounds" --samples "$samples" --out "$pieces/10-cri.md")
	[[ -n $profile ]] && args+=(--profile "$profile")
	piece 10-cri bash hack/bench/cri.sh "${args[@]}"
	# cri.sh's own heading and version line: already in the head.
	[[ -f $pieces/10-cri.md ]] && sed -i -e '1s/^# .*/## CRI benchmark: critest -benchmark/' -e '3d' "$pieces/10-cri.md"
fi
measure=()
[[ -n ${want[memory]:-} ]] && measure+=(memory)
[[ -n ${want[scale]:-} ]] && measure+=(scale)
if ((${#measure[@]})); then
	piece 20-measure bash hack/bench/cri.sh --no-build --rounds "$rounds" \
		--sections "$(IFS=,; echo "${measure[*]}")" --out "$pieces/20-measure.md"
	# Only its tables: the head has the rest.
	[[ -f $pieces/20-measure.md ]] && sed -i '1,/^Sections:/d' "$pieces/20-measure.md"
fi
if [[ -n ${want[build]:-} ]]; then
	piece 30-build bash hack/bench/build.sh --rounds "$rounds" --out "$pieces/30-build.md"
fi
if [[ -n $no_kubelet ]]; then
	printf '## kubelet\n\nNot measured in this run: %s.\n\n' "$no_kubelet" >"$pieces/40-kubelet.md"
elif [[ -n ${want[kubelet]:-} ]]; then
	piece 40-kubelet bash hack/bench/cri.sh --no-build --rounds "$rounds" --sections kubelet --out "$pieces/40-kubelet.md"
	[[ -f $pieces/40-kubelet.md ]] && sed -i '1,/^Sections:/d' "$pieces/40-kubelet.md"
fi

kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
# The load row ends the head's table.
load=$(sort -n "$pieces/load" | awk -v c="$(nproc)" '{v[NR] = $1; s += $1} END {
	printf "1-minute load average over the run: min %.1f, median %.1f, mean %.1f, max %.1f (%d samples, 15 s apart) on %d cores", v[1], v[int((NR + 1) / 2)], s / NR, v[NR], NR, c}')
sed -i "/^| Go |/a | load | $load |" "$pieces/00-head.md"
mkdir -p "$(dirname "$out")"
cat "$pieces"/*.md >"$out"
log "wrote $out"
[[ -n $profile ]] && log "profiles in $profile"
exit 0
