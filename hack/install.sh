#!/usr/bin/env bash
# install.sh installs slipway on a node (`make install` builds first and runs
# it):
#   PREFIX/bin/        slipwayd, slipway, slipway-infra, slipway-logger
#   UNITDIR/           slipwayd.service (hack/install/slipwayd.service, its
#                      ExecStart and PATH pointed at PREFIX/bin)
#   /etc/slipway/      config.toml, the commented defaults
#                      (hack/install/config.toml), and an empty certs.d/
# and with WITH_DEPS=1 the pinned containerd, containerd-shim-runc-v2 and runc
# into PREFIX/bin and the CNI plugins into /opt/cni/bin, through
# hack/install-deps.sh (which builds them; it also installs the Debian
# packages runc's build needs).
#
# Idempotent: a file already as it should be is left alone (not even
# touched); binaries are replaced by rename, so a running slipwayd or a shim
# starting slipway-logger never sees a half-written file. An existing
# /etc/slipway/config.toml is never overwritten: when it differs from the
# defaults, they go to config.toml.default beside it, and this says so.
#
# Environment: DESTDIR (default empty: the live system; set it to install
# into a staging tree), PREFIX (default /usr/local), BIN (the built
# binaries, default ./bin), UNITDIR (default PREFIX/lib/systemd/system for
# PREFIX /usr or /usr/local, where systemd looks; /etc/systemd/system
# otherwise), WITH_DEPS=1.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BIN=${BIN:-$REPO/bin}
case $PREFIX in
/usr | /usr/local) UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system} ;;
*) UNITDIR=${UNITDIR:-/etc/systemd/system} ;;
esac
BINDIR=$PREFIX/bin
CONFDIR=/etc/slipway
BINARIES=(slipwayd slipway slipway-infra slipway-logger)

log() { echo "install: $*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}

[[ $PREFIX == /* ]] || fail "PREFIX must be an absolute path, got \"$PREFIX\""
[[ -z $DESTDIR || $DESTDIR == /* ]] || fail "DESTDIR must be an absolute path, got \"$DESTDIR\""
for b in "${BINARIES[@]}"; do
	[[ -x $BIN/$b ]] || fail "$BIN/$b is missing: run make build (or make install)"
done

# put_file SRC DEST MODE: installs SRC as DEST with MODE, by rename, unless
# DEST already has that content and mode.
put_file() {
	local src=$1 dest=$2 mode=$3
	if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
		return
	fi
	mkdir -p "$(dirname "$dest")"
	local tmp
	tmp=$(mktemp "$dest.XXXXXX")
	install -m "$mode" "$src" "$tmp"
	mv -f "$tmp" "$dest"
	log "installed $dest"
}

for b in "${BINARIES[@]}"; do
	put_file "$BIN/$b" "$DESTDIR$BINDIR/$b" 0755
done

if [[ ${WITH_DEPS:-0} == 1 ]]; then
	log "containerd, its shim, runc and the CNI plugins (hack/install-deps.sh runtime)"
	PREFIX=$DESTDIR$PREFIX CNI_BIN_DIR=$DESTDIR/opt/cni/bin bash "$REPO/hack/install-deps.sh" runtime
fi

# The unit, with PREFIX/bin in ExecStart and first in PATH.
unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed -e "s|^ExecStart=/usr/local/bin/|ExecStart=$BINDIR/|" \
	-e "s|^Environment=PATH=/usr/local/bin:|Environment=PATH=$BINDIR:|" \
	"$REPO/hack/install/slipwayd.service" >"$unit"
grep -q "^ExecStart=$BINDIR/slipwayd\$" "$unit" || fail "hack/install/slipwayd.service: no ExecStart=/usr/local/bin/slipwayd line to point at $BINDIR"
put_file "$unit" "$DESTDIR$UNITDIR/slipwayd.service" 0644

# The config: never overwritten.
config=$DESTDIR$CONFDIR/config.toml
defaults=$REPO/hack/install/config.toml
if [[ ! -e $config ]]; then
	put_file "$defaults" "$config" 0644
elif cmp -s "$defaults" "$config"; then
	:
else
	put_file "$defaults" "$config.default" 0644
	log "kept your $config; the defaults are in $config.default"
fi
if [[ ! -d $DESTDIR$CONFDIR/certs.d ]]; then
	mkdir -p "$DESTDIR$CONFDIR/certs.d"
	log "created $DESTDIR$CONFDIR/certs.d (registry hosts directory)"
fi

if [[ -z $DESTDIR ]]; then
	log "done; start it with: systemctl daemon-reload && systemctl enable --now slipwayd"
else
	log "done (into $DESTDIR)"
fi
