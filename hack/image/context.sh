#!/usr/bin/env bash
# context.sh OUT assembles the build context of hack/image/Dockerfile in the
# directory OUT (created, or emptied if an earlier run made it):
#
#   OUT/base/     what the binaries need at run time: the shared libraries
#                 `ldd` names for each dynamically linked binary and the
#                 dynamic loader, CA certificates (pushes to and pulls from
#                 https registries), a root-only /etc/passwd and /etc/group,
#                 and /tmp (mode 1777: containerd and BuildKit mount layers
#                 on temporary directories there when they diff and apply).
#   OUT/tools/    the pinned runtime `make deps` installs: containerd,
#                 containerd-shim-runc-v2 and runc in /usr/local/bin, and
#                 the CNI plugins in /opt/cni/bin.
#   OUT/slipway/  slipwayd, slipway, slipway-infra and slipway-logger from
#                 `make build`, in /usr/local/bin.
#
# No base image is pulled: everything comes from this machine (Debian 12),
# so the image runs wherever this machine's glibc would. iptables is not
# included: the image's user is the builder (slipwayd --builder-only, the
# Helm chart), whose build steps use the host network and never call CNI;
# the CNI plugins come along for a node runtime, which needs the node's
# iptables for portmap and the bridge's ipMasq.
#
# Environment: BIN (default ./bin) holds slipway's binaries, TOOLS_DIR
# (default /usr/local/bin) containerd, its shim and runc, CNI_BIN_DIR
# (default /opt/cni/bin) the CNI plugins.
set -euo pipefail

fail() {
	echo "context.sh: $*" >&2
	exit 1
}

(($# == 1)) || fail "usage: hack/image/context.sh OUT"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$1
BIN=${BIN:-$REPO/bin}
TOOLS_DIR=${TOOLS_DIR:-/usr/local/bin}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
MARKER=.slipway-image-context

# OUT is emptied only when it is a context this script made (or empty).
if [[ -e $OUT ]]; then
	[[ -d $OUT ]] || fail "$OUT is not a directory"
	if [[ -n $(ls -A "$OUT") && ! -e $OUT/$MARKER ]]; then
		fail "$OUT is not empty and not a context made by this script: refusing to empty it"
	fi
	rm -rf "${OUT:?}"/* "$OUT/$MARKER"
fi
mkdir -p "$OUT"/{base,tools,slipway}
touch "$OUT/$MARKER"

# put SRC DSTDIR: copies SRC (following symlinks) to DSTDIR/SRC's basename.
put() {
	[[ -f $1 && -x $1 ]] || fail "$1 is missing or not executable"
	mkdir -p "$2"
	cp -L "$1" "$2/"
}

for b in slipwayd slipway slipway-infra slipway-logger; do
	put "$BIN/$b" "$OUT/slipway/usr/local/bin"
done
# `make build` keeps symbols and DWARF in slipwayd and slipway for
# debuggers; the image drops them (slipwayd 95 -> 66 MiB). Go's own tables
# stay, so panics and pprof still name functions.
if command -v strip >/dev/null; then
	strip "$OUT"/slipway/usr/local/bin/slipwayd "$OUT"/slipway/usr/local/bin/slipway
else
	echo "context.sh: no strip (binutils): the image keeps slipwayd's debug symbols" >&2
fi
[[ -n $(ls -A "$CNI_BIN_DIR" 2>/dev/null) ]] || fail "no CNI plugins in $CNI_BIN_DIR: run make deps"
for b in containerd containerd-shim-runc-v2 runc; do
	put "$TOOLS_DIR/$b" "$OUT/tools/usr/local/bin"
done
for p in "$CNI_BIN_DIR"/*; do
	put "$p" "$OUT/tools/opt/cni/bin"
done

# Shared libraries and the loader, at the paths the binaries look for them:
# ldd prints "NAME => PATH (ADDR)" per library and "LOADER (ADDR)" for the
# loader (the binary's PT_INTERP path). The loader finds libraries in its
# built-in directories (/lib/x86_64-linux-gnu on Debian), so no
# ld.so.cache is needed.
declare -A libs=()
for f in "$OUT"/slipway/usr/local/bin/* "$OUT"/tools/usr/local/bin/* "$OUT"/tools/opt/cni/bin/*; do
	out=$(ldd "$f" 2>&1) || true
	if [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]]; then
		continue
	fi
	while read -r line; do
		case $line in
		*" => not found"*) fail "$(basename "$f") needs ${line%% *}, which is not installed" ;;
		*" => /"*) p=${line#* => } ;;
		/*) p=$line ;;
		*) continue ;; # linux-vdso.so.1: the kernel's
		esac
		libs[${p%% (*}]=1
	done <<<"$out"
done
for lib in "${!libs[@]}"; do
	mkdir -p "$OUT/base$(dirname "$lib")"
	cp -L "$lib" "$OUT/base$lib"
done

mkdir -p "$OUT/base/etc/ssl/certs" "$OUT/base/tmp"
chmod 1777 "$OUT/base/tmp"
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || fail "/etc/ssl/certs/ca-certificates.crt is missing: apt-get install ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$OUT/base/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$OUT/base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$OUT/base/etc/group"

echo "context.sh: $OUT: $(find "$OUT" -type f | wc -l) files, $(du -sh "$OUT" | cut -f1); libraries: $(printf '%s ' "${!libs[@]}")" >&2
