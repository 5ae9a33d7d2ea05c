#!/usr/bin/env bash
# critest.sh SLIPWAYD [FOCUS]: runs critest (cri-tools) against a fresh
# slipwayd with its own root and state, pulling from the project's test
# registry on 127.0.0.1. Specs listed in test/critest/skip.txt are skipped.
# slipwayd serves NRI on a socket in the work dir and critest gets it with
# -nri-socket, so the NRI specs run too (CRITEST_NRI=off leaves the flag
# out: critest then skips them, as it does for a runtime without NRI).
# CRITEST_FLAGS adds critest flags, e.g.
#   CRITEST_FLAGS="--websocket-exec --websocket-attach --websocket-portforward"
# Ends only the processes it started and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."

slipwayd=${1:?usage: critest.sh SLIPWAYD [FOCUS]}
focus=${2:-}
work=$(mktemp -d /tmp/slipway-critest.XXXXXX)
# Traversable by the IDs of pods with user namespaces (as /run and /var/lib are).
chmod 0711 "$work"
pids=()

# The run's own pod network: a bridge and subnet of its own, IPAM state in
# the work dir.
bridge=swcritest0
write_network() {
	mkdir -p "$work/net.d"
	cat >"$work/net.d/10-critest.conflist" <<-CONF
	{
	  "cniVersion": "1.0.0",
	  "name": "slipway-critest",
	  "plugins": [
	    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
	     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.253.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$work/ipam"}},
	    {"type": "portmap", "capabilities": {"portMappings": true}}
	  ]
	}
	CONF
}

cleanup() {
	local pid
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ip link del "$bridge" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# wait_for PATH: waits up to 60 s for PATH to exist.
wait_for() {
	for _ in $(seq 600); do
		[[ -e $1 ]] && return 0
		sleep 0.1
	done
	echo "critest.sh: $1 did not appear; logs in $work" >&2
	tail -n 50 "$work"/*.log >&2 || true
	return 1
}

# skip_regex: the skip list's patterns, one alternation.
skip_regex() {
	sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d' test/critest/skip.txt | paste -sd '|'
}

go build -o "$work/testimages" ./hack/testimages
"$work/testimages" --fetch-glibc-busybox --addr 127.0.0.1:0 --hosts-dir "$work/certs.d" --addr-file "$work/registry.addr" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_for "$work/registry.addr"

write_network
nri_socket=$work/nri/nri.sock
"$slipwayd" --root "$work/root" --state "$work/run" --registry-config-path "$work/certs.d" --cni-conf-dir "$work/net.d" \
	--nri-socket "$nri_socket" --metrics-address 127.0.0.1:0 --log-level debug >"$work/slipwayd.log" 2>&1 &
pids+=($!)
wait_for "$work/run/slipway.sock"

wait_for "$nri_socket"

args=(--runtime-endpoint "unix://$work/run/slipway.sock" --ginkgo.flake-attempts=1)
[[ ${CRITEST_NRI:-on} != off ]] && args+=(--nri-socket "$nri_socket")
[[ -n $focus ]] && args+=(--ginkgo.focus "$focus")
skip=$(skip_regex)
[[ -n $skip ]] && args+=(--ginkgo.skip "$skip")
# Word splitting is intended: CRITEST_FLAGS is a list of flags.
# shellcheck disable=SC2206
[[ -n ${CRITEST_FLAGS:-} ]] && args+=($CRITEST_FLAGS)
if ! critest "${args[@]}"; then
	echo "critest.sh: critest failed; slipwayd log tail:" >&2
	tail -n 100 "$work/slipwayd.log" >&2
	exit 1
fi
