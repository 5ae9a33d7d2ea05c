#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]: runs each fuzz target for FUZZTIME (default 10s), one
# after the other, and fails on the first crash; go test then leaves the
# failing input under the package's testdata/fuzz/, where it becomes a
# regression case of plain `go test`. FUZZ_PARALLEL sets the workers
# (default 1: CI machines are shared).
#
# -fuzzminimizetime is kept small on purpose: the test binaries link
# containerd, so their coverage map is large and each minimizing step
# copies it; with the default (60s) a short run spends all its time
# minimizing its first interesting input and fuzzes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-10s}
parallel=${FUZZ_PARALLEL:-1}

# package target
targets=(
	"./cri FuzzValidatePodConfig"
	"./cri FuzzValidateContainerRequest"
	"./runtime/spec FuzzSpecOpts"
)

for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $name ($pkg, $fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10x \
		-parallel "$parallel" "$pkg"
done
