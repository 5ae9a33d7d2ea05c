# live-slipwayd.sh is sourced by the hack/ checks that run a slipwayd of
# their own under a temporary directory (chart-test.sh, install-test.sh).
# The sourcing script sets TMP, runs the daemon with --root/--state under
# $TMP/live and its log in $TMP/live/slipwayd.log, records its PID in
# SLIPWAYD_PID (and EXTRA_PIDS, optional), and defines log(); then `trap live_cleanup EXIT`.

# live_cleanup stops that slipwayd (and its containerd, should it outlive
# it), unmounts whatever is left under $TMP, shows the daemon's log when
# the script failed, and removes $TMP unless KEEP=1. It exits with the
# script's status.
live_cleanup() {
	local rc=$?
	# Helpers the script started beside slipwayd (a listener), by pid.
	if [[ -n ${EXTRA_PIDS:-} ]]; then
		kill $EXTRA_PIDS 2>/dev/null || true
	fi
	if [[ -n ${SLIPWAYD_PID:-} ]] && kill -0 "$SLIPWAYD_PID" 2>/dev/null; then
		kill -TERM "$SLIPWAYD_PID" 2>/dev/null || true
		wait "$SLIPWAYD_PID" 2>/dev/null || true
	fi
	# slipwayd's containerd ends with it (Pdeathsig); make sure of it.
	local pidfile=$TMP/live/state/containerd/containerd.pid
	if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
	fi
	local m
	for m in $(findmnt -rn -o TARGET 2>/dev/null | grep "^$TMP/" | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	if ((rc != 0)) && [[ -f $TMP/live/slipwayd.log ]]; then
		log "slipwayd's log:"
		tail -n 40 "$TMP/live/slipwayd.log" >&2
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
