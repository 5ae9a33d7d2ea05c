#!/usr/bin/env bash
# Side-by-side build times: slipwayd's embedded BuildKit against standalone
# buildkitd (containerd worker), on the same kind of fresh containerd, the
# same loopback registry and the same two-stage Go Dockerfile (app/).
# For each round and variant: a cold build on fresh state, three no-change
# rebuilds, three rebuilds after a one-line edit of main.go.
#
#   make build && INSTALL_BUILDKIT=1 hack/install-deps.sh
#   sudo test/dockerfiles/gobench/bench.sh            # ROUNDS="1 2 3" VARIANTS="..."
#
# Variants: slipwayd-buildctl (image output; slipway unpacks it for the CRI),
# buildkitd-buildctl (image output, not unpacked: buildkitd's default),
# slipway-cli (slipway build -t), and *-unpack=true|false to compare equal work.
# Needs root, buildctl and buildkitd in PATH, and an idle machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
BIN=${BIN:-$repo/bin}
work=$(mktemp -d /tmp/slipway-gobench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# The loopback test registry and a hosts directory pointing docker.io at it.
(cd "$repo" && go build -o "$work/testimages" ./hack/testimages)
"$work/testimages" --addr 127.0.0.1:0 --hosts-dir "$work/certs.d" --addr-file "$work/registry.addr" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do [[ -s $work/registry.addr ]] && break; sleep 0.1; done
reg=$(cat "$work/registry.addr")
printf '[registry."docker.io"]\n  mirrors = ["%s"]\n[registry."%s"]\n  http = true\n' "$reg" "$reg" >"$work/buildkitd.toml"
mkdir -p "$work/cni"

# start_slipwayd DIR [FLAGS...]: a fresh slipwayd (and containerd) in DIR.
start_slipwayd() {
	local d=$1; shift
	mkdir -p "$d"
	"$BIN/slipwayd" --root "$d/root" --state "$d/run" --registry-config-path "$work/certs.d" \
		--cni-conf-dir "$work/cni" --metrics-address 127.0.0.1:0 "$@" >"$d/slipwayd.log" 2>&1 &
	echo $! >"$d/pid"
	for _ in $(seq 300); do [[ -S $d/run/containerd/containerd.sock ]] && break; sleep 0.1; done
	if [[ " $* " != *" --builder=false "* ]]; then
		for _ in $(seq 300); do buildctl --addr "unix://$d/run/buildkit.sock" debug workers >/dev/null 2>&1 && break; sleep 0.1; done
	fi
}
stop() { local p; p=$(cat "$1"); kill -TERM "$p" 2>/dev/null || true; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; }

# The Go toolchain image, pushed to the registry as docker.io/library/golang:1.26.
goroot=$(go env GOROOT)
start_slipwayd "$work/setup"
"$BIN/slipway" build --addr "unix://$work/setup/run/buildkit.sock" --progress quiet \
	-f "$here/golang.Dockerfile" --build-arg "GOROOT_NAME=$(basename "$goroot")" \
	--output "type=registry,name=$reg/library/golang:1.26" "$(dirname "$goroot")"
stop "$work/setup/pid"
rm -rf "$work/setup"

build() { # VARIANT ADDR CONTEXT
	local out="type=image,name=docker.io/library/goapp:bench"
	case $1 in
	slipway-cli) "$BIN/slipway" build --addr "$2" --progress quiet -t goapp:bench "$3"; return ;;
	*-unpack=*) out+=",unpack=${1##*-unpack=}" ;;
	esac
	buildctl --addr "$2" build --progress quiet --frontend dockerfile.v0 --local "context=$3" --local "dockerfile=$3" --output "$out"
}

run_variant() { # VARIANT ROUND
	local v=$1 r=$2 d=$work/$1-$2 addr t0 cold nc=() ed=()
	cp -r "$here/app" "$d.ctx"
	if [[ $v == buildkitd* ]]; then
		start_slipwayd "$d" --builder=false
		buildkitd --config "$work/buildkitd.toml" --root "$d/buildkitd" --addr "unix://$d/buildkitd.sock" \
			--oci-worker=false --containerd-worker=true --containerd-worker-addr "$d/run/containerd/containerd.sock" \
			>"$d/buildkitd.log" 2>&1 &
		echo $! >"$d/buildkitd.pid"
		addr=unix://$d/buildkitd.sock
		for _ in $(seq 300); do buildctl --addr "$addr" debug workers >/dev/null 2>&1 && break; sleep 0.1; done
	else
		start_slipwayd "$d"
		addr=unix://$d/run/buildkit.sock
	fi
	t0=$(now); build "$v" "$addr" "$d.ctx" >/dev/null; cold=$(since "$t0")
	for _ in 1 2 3; do t0=$(now); build "$v" "$addr" "$d.ctx" >/dev/null; nc+=("$(since "$t0")"); done
	for i in 1 2 3; do
		sed -i "s/greeting = \".*\"/greeting = \"edit-$r-$i\"/" "$d.ctx/main.go"
		t0=$(now); build "$v" "$addr" "$d.ctx" >/dev/null; ed+=("$(since "$t0")")
	done
	printf "%-32s round %s  cold %6.2fs  no-change %.3f %.3f %.3fs  edit %.2f %.2f %.2fs\n" "$v" "$r" "$cold" "${nc[@]}" "${ed[@]}"
	[[ -f $d/buildkitd.pid ]] && stop "$d/buildkitd.pid"
	stop "$d/pid"
	rm -rf "$d" "$d.ctx"
}

for r in ${ROUNDS:-1 2 3}; do
	for v in ${VARIANTS:-slipwayd-buildctl buildkitd-buildctl slipway-cli}; do
		run_variant "$v" "$r"
	done
done
