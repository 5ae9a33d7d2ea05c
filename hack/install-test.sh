#!/usr/bin/env bash
# install-test.sh checks hack/install.sh (`make install`) without touching the
# node: it installs into temporary DESTDIRs and checks
#  1. the files, their modes and contents (binaries, slipwayd.service with
#     KillMode=process and Delegate=yes, the commented config.toml);
#  2. that a second install changes nothing (same inodes, times, modes);
#  3. that an existing config.toml is kept and the defaults go beside it;
#  4. that another PREFIX moves ExecStart, PATH and the unit's directory;
#  5. `systemd-analyze verify` of the installed unit, in a root made of the
#     DESTDIR and this machine's systemd units (skipped, and said so, when
#     systemd-analyze is not installed);
#  6. the installed slipwayd: --version, and that it loads the installed
#     config and the same file with every setting uncommented;
#  7. as root with containerd, runc, crictl and socat on PATH: the installed
#     slipwayd, run as the unit's ExecStart runs it (the installed config;
#     ROOT, STATE and the CNI config dir moved to temporary dirs; a
#     NOTIFY_SOCKET as systemd gives a Type=notify unit), sends READY=1
#     only when `crictl version` answers, and STOPPING=1 then a clean exit
#     on SIGTERM.
#
# Environment: BIN (the built binaries, default ./bin), INSTALL_TEST_LIVE=0
# skips step 7, KEEP=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${BIN:-$REPO/bin}
BINARIES=(slipwayd slipway slipway-infra slipway-logger)

log() { echo "install-test: $*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}

TMP=$(mktemp -d /tmp/install-test.XXXXXX)
SLIPWAYD_PID=
EXTRA_PIDS=
# shellcheck source=hack/live-slipwayd.sh
source hack/live-slipwayd.sh
trap live_cleanup EXIT

for b in "${BINARIES[@]}"; do
	[[ -x $BIN/$b ]] || fail "$BIN/$b is missing: run make build"
done

# install DESTDIR [VAR=value...]: runs hack/install.sh, its messages in
# DESTDIR.log.
install_into() {
	local dest=$1
	shift
	env DESTDIR="$dest" BIN="$BIN" "$@" bash hack/install.sh 2>"$dest.log" || {
		cat "$dest.log" >&2
		fail "hack/install.sh into $dest failed"
	}
}

# want_file PATH MODE: PATH is a regular file with MODE (octal, as stat %a).
want_file() {
	[[ -f $1 ]] || fail "$1 is not installed"
	local mode
	mode=$(stat -c %a "$1")
	[[ $mode == "$2" ]] || fail "$1 has mode $mode, want $2"
}

# want_line FILE LINE: FILE has LINE as a whole line.
want_line() {
	grep -qxF -- "$2" "$1" || fail "$1 lacks the line \"$2\""
}

# --- 1. files, modes, contents --------------------------------------------
DEST=$TMP/dest
install_into "$DEST"
for b in "${BINARIES[@]}"; do
	want_file "$DEST/usr/local/bin/$b" 755
	cmp -s "$BIN/$b" "$DEST/usr/local/bin/$b" || fail "usr/local/bin/$b is not $BIN/$b"
done
UNIT=$DEST/usr/local/lib/systemd/system/slipwayd.service
want_file "$UNIT" 644
for l in ExecStart=/usr/local/bin/slipwayd KillMode=process Delegate=yes Type=notify NotifyAccess=main Restart=always TasksMax=infinity \
	OOMScoreAdjust=-999 LimitNOFILE=1024:524288 WantedBy=multi-user.target \
	Environment=PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin; do
	want_line "$UNIT" "$l"
done
CONFIG=$DEST/etc/slipway/config.toml
want_file "$CONFIG" 644
cmp -s hack/install/config.toml "$CONFIG" || fail "etc/slipway/config.toml is not hack/install/config.toml"
[[ -d $DEST/etc/slipway/certs.d ]] || fail "etc/slipway/certs.d was not created"
[[ ! -e $CONFIG.default ]] || fail "config.toml.default written on a fresh install"
log "installs the binaries (0755), slipwayd.service and config.toml (0644), certs.d"

# --- 2. a second install changes nothing ----------------------------------
snapshot() { (cd "$1" && find . -printf '%p %y %m %s %i %T@\n' | sort); }
snapshot "$DEST" >"$TMP/before"
install_into "$DEST"
snapshot "$DEST" >"$TMP/after"
diff -u "$TMP/before" "$TMP/after" >&2 || fail "a second install changed files"
if grep -q "installed\|created" "$DEST.log"; then
	cat "$DEST.log" >&2
	fail "a second install reports changes"
fi
log "a second install changes nothing"

# --- 3. an existing config is kept ----------------------------------------
printf '\nlog_level = "debug"\n' >>"$CONFIG"
cp "$CONFIG" "$TMP/edited"
install_into "$DEST"
cmp -s "$TMP/edited" "$CONFIG" || fail "install overwrote an edited config.toml"
want_file "$CONFIG.default" 644
cmp -s hack/install/config.toml "$CONFIG.default" || fail "config.toml.default is not the defaults"
grep -q "kept your $CONFIG; the defaults are in $CONFIG.default" "$DEST.log" || {
	cat "$DEST.log" >&2
	fail "install did not say it kept config.toml"
}
cp hack/install/config.toml "$CONFIG"
rm "$CONFIG.default"
log "keeps an edited config.toml, writes config.toml.default and says so"

# --- 4. another PREFIX ----------------------------------------------------
OPT=$TMP/opt
install_into "$OPT" PREFIX=/opt/slipway
want_file "$OPT/opt/slipway/bin/slipwayd" 755
want_file "$OPT/etc/systemd/system/slipwayd.service" 644
want_line "$OPT/etc/systemd/system/slipwayd.service" ExecStart=/opt/slipway/bin/slipwayd
want_line "$OPT/etc/systemd/system/slipwayd.service" Environment=PATH=/opt/slipway/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
log "PREFIX=/opt/slipway: the unit goes to /etc/systemd/system, ExecStart and PATH to /opt/slipway/bin"

# --- 5. systemd-analyze verify --------------------------------------------
# verify resolves the unit's dependencies (sysinit.target, ...) and checks
# that ExecStart is executable, under --root: the root is the DESTDIR plus
# this machine's systemd units. Warnings (unknown keys, bad values) are
# failures too: verify exits 0 on them.
verify_unit() { # ROOT UNIT_NAME OUT
	systemd-analyze verify --man=no --root="$1" "$2" >"$3" 2>&1 && [[ ! -s $3 ]]
}
if command -v systemd-analyze >/dev/null; then
	units=
	for d in /usr/lib/systemd/system /lib/systemd/system; do
		[[ -f $d/sysinit.target ]] && units=$d && break
	done
	[[ -n $units ]] || fail "systemd-analyze is installed but sysinit.target is in neither /usr/lib/systemd/system nor /lib/systemd/system"
	VROOT=$TMP/verify-root
	cp -a "$DEST" "$VROOT"
	mkdir -p "$VROOT/usr/lib/systemd"
	cp -a "$units" "$VROOT/usr/lib/systemd/system"
	cp "$UNIT" "$VROOT/usr/local/lib/systemd/system/slipwayd.service"
	verify_unit "$VROOT" slipwayd.service "$TMP/verify.out" || {
		cat "$TMP/verify.out" >&2
		fail "systemd-analyze verify slipwayd.service"
	}
	# The check sees a broken unit (so the unit above was really read).
	sed 's/^KillMode=process$/KillMode=processes/' "$UNIT" >"$VROOT/usr/local/lib/systemd/system/slipwayd.service"
	if verify_unit "$VROOT" slipwayd.service "$TMP/verify-broken.out"; then
		fail "systemd-analyze verify accepts KillMode=processes: the check does not read the unit"
	fi
	log "systemd-analyze verify: slipwayd.service is clean ($(systemd-analyze --version | head -1)); a broken copy is caught: $(head -1 "$TMP/verify-broken.out")"
else
	log "SKIP systemd-analyze verify: systemd-analyze is not installed (Debian package systemd)"
fi

# --- 6. the installed slipwayd reads the installed config ------------------
SLIPWAYD=$DEST/usr/local/bin/slipwayd
"$SLIPWAYD" --version | grep -q '^slipwayd ' || fail "installed slipwayd --version"
log "$("$SLIPWAYD" --version)"
sed -E 's/^#([A-Za-z0-9_]+ = )/\1/' "$CONFIG" >"$TMP/uncommented.toml"
cmp -s "$CONFIG" "$TMP/uncommented.toml" && fail "config.toml has no commented-out settings"
# With a containerd binary that does not exist, slipwayd exits 1 right after
# the config is loaded and validated (exit 2 is a config error).
for cfg in "$CONFIG" "$TMP/uncommented.toml"; do
	dir=$TMP/dry/$(basename "$cfg")
	mkdir -p "$dir"
	rc=0
	"$SLIPWAYD" --config "$cfg" --root "$dir/root" --state "$dir/state" \
		--containerd-binary "$dir/no-containerd" --metrics-address= >"$dir/log" 2>&1 || rc=$?
	if ((rc != 1)) || ! grep -q 'embedded containerd: containerd binary' "$dir/log"; then
		cat "$dir/log" >&2
		fail "installed slipwayd refused $(basename "$cfg") (exit $rc)"
	fi
done
log "installed slipwayd loads the installed config.toml, as installed and uncommented"

# --- 7. the installed slipwayd serves the CRI -------------------------------
live_ready() {
	[[ ${INSTALL_TEST_LIVE:-1} != 0 ]] || { log "SKIP live run: INSTALL_TEST_LIVE=0"; return 1; }
	[[ $(id -u) == 0 ]] || { log "SKIP live run: not root"; return 1; }
	local b
	for b in containerd containerd-shim-runc-v2 runc crictl socat; do
		command -v "$b" >/dev/null || { log "SKIP live run: $b not on PATH"; return 1; }
	done
}
if live_ready; then
	LIVE=$TMP/live
	mkdir -p "$LIVE/net.d"
	SOCK=$LIVE/state/slipway.sock
	# systemd's side of sd_notify: a datagram socket; each message lands
	# on a line of its own in notify.log.
	NOTIFY=$LIVE/notify.sock
	socat -u UNIX-RECVFROM:"$NOTIFY",fork SYSTEM:'cat; echo' >"$LIVE/notify.log" 2>&1 &
	EXTRA_PIDS=$!
	for ((i = 0; i < 50; i++)); do [[ -S $NOTIFY ]] && break; sleep 0.1; done
	[[ -S $NOTIFY ]] || fail "socat did not create $NOTIFY"
	# The unit's ExecStart and PATH, with the DESTDIR's config and the
	# node's directories moved into $LIVE.
	NOTIFY_SOCKET=$NOTIFY PATH=$DEST/usr/local/bin:$PATH "$SLIPWAYD" --config "$CONFIG" \
		--root "$LIVE/root" --state "$LIVE/state" --cni-conf-dir "$LIVE/net.d" --metrics-address 127.0.0.1:0 \
		>"$LIVE/slipwayd.log" 2>&1 &
	SLIPWAYD_PID=$!
	for ((i = 0; i < 240; i++)); do
		kill -0 "$SLIPWAYD_PID" 2>/dev/null || fail "slipwayd exited"
		grep -qsx "READY=1" "$LIVE/notify.log" && break
		sleep 0.5
	done
	grep -qx "READY=1" "$LIVE/notify.log" || fail "slipwayd sent no READY=1 to NOTIFY_SOCKET (got: $(tr '\n' ' ' <"$LIVE/notify.log"))"
	# Ready means serving: the first call answers (crictl's own timeout
	# only; no retry loop).
	timeout 30 crictl --runtime-endpoint "unix://$SOCK" version >"$LIVE/version" 2>"$LIVE/version.err" || {
		cat "$LIVE/version.err" >&2
		fail "crictl version through $SOCK failed"
	}
	grep -qx 'RuntimeName:  slipway' "$LIVE/version" || {
		cat "$LIVE/version" >&2
		fail "crictl version: the runtime is not slipway"
	}
	log "crictl version through the installed slipwayd: $(tr '\n' ' ' <"$LIVE/version")"
	kill -TERM "$SLIPWAYD_PID"
	rc=0
	wait "$SLIPWAYD_PID" || rc=$?
	SLIPWAYD_PID=
	((rc == 0)) || fail "slipwayd exited $rc on SIGTERM"
	grep -qx "STOPPING=1" "$LIVE/notify.log" || fail "slipwayd sent no STOPPING=1 on SIGTERM (got: $(tr '\n' ' ' <"$LIVE/notify.log"))"
	# Only slipwayd's messages: its containerd's would be a second READY=1.
	(($(grep -cx "READY=1" "$LIVE/notify.log") == 1)) || fail "more than one READY=1: $(tr '\n' ' ' <"$LIVE/notify.log")"
	log "slipwayd (pid from this run) sent READY=1 when serving, STOPPING=1 and stopped cleanly on SIGTERM"
	kill "$EXTRA_PIDS"
	EXTRA_PIDS=
fi

log "all checks passed"
