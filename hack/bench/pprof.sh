# shellcheck shell=bash
# pprof.sh: CPU profiles and execution traces of a running slipwayd, taken
# through pprof on its metrics listener (slipwayd --metrics-pprof), sourced
# by hack/bench/cri.sh and hack/bench/build.sh. The sourcing script defines
# log() and an array prof_pids=().
#
# pprof_start DIR LOG
#   starts back-to-back 5 s CPU profiles (DIR/cpu-N.pprof) and execution
#   traces (DIR/trace-N.out) of the slipwayd whose log is LOG (the
#   listener's address is in it), until pprof_stop DIR.
# pprof_stop DIR
#   lets the last 5 s window finish and merges the CPU profiles into
#   DIR/cpu.pprof and DIR/cpu-top.txt.

pprof_start() {
	local dir=$1 addr kind
	mkdir -p "$dir"
	addr=$(grep 'serving metrics.*pprof=true' "$2" | grep -o '127\.0\.0\.1:[0-9]*' | tail -n1) || true
	[[ -n $addr ]] || { log "no pprof address in the slipwayd log; not profiling"; return 0; }
	rm -f "$dir/.stop"
	for kind in cpu trace; do
		(
			i=0 path=profile ext=pprof
			[[ $kind == trace ]] && path=trace ext=out
			while [[ ! -e $dir/.stop ]]; do
				i=$((i + 1))
				curl -sf -o "$dir/$kind-$i.$ext" "http://$addr/debug/pprof/$path?seconds=5" || break
			done
		) &
		prof_pids+=($!)
	done
}

pprof_stop() {
	local dir=$1 p
	touch "$dir/.stop"
	for p in "${prof_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	prof_pids=()
	rm -f "$dir/.stop"
	if compgen -G "$dir/cpu-*.pprof" >/dev/null; then
		go tool pprof -proto "$dir"/cpu-*.pprof >"$dir/cpu.pprof" 2>/dev/null &&
			go tool pprof -top -nodecount=40 "$dir/cpu.pprof" >"$dir/cpu-top.txt" 2>/dev/null || log "merging profiles in $dir failed"
	fi
	log "profiles and traces in $dir"
}
