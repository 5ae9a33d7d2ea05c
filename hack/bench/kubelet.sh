# shellcheck shell=bash
# kubelet.sh: the kubelet section of the CRI benchmark, sourced by
# hack/bench/cri.sh (`cri.sh --sections kubelet`; `make bench KUBELET=1`).
# On the runtime under test (slipwayd, or containerd's CRI: cri.sh starts a
# fresh one per round, alternating), it runs a real kubelet standalone (no
# API server; static pods from a manifest directory) and hands the timing to
# `crimeasure kubelet`: a warm-up pod, then 10 and 50 (--kubelet-pods) two-
# container pods placed at once, each pod's start read from the runtime's
# CRI records, torn down until the runtime lists none before the next count.
#
# The kubelet (make deps builds v1.37.2 into /usr/local/bin) runs with its
# root dir, certificates, pod logs and volume plugin dir under cri.sh's work
# dir, its pod cgroups under a cgroup root of its own
# (/slipway-bench-kubelet-PID, made and removed here), no iptables chains,
# and its server on loopback ports nothing else listens on (anonymous,
# AlwaysAllow: crimeasure reads /pods and /metrics). On this machine it needs
# failCgroupV1: false (cgroup v1) and failSwapOn: false. What it changes on
# the host is put back when it stops: the kernel settings its container
# manager rewrites at start-up, and the /var/log/containers links (and the
# log roots, if it made them) of its pods.
#
# Uses from cri.sh: work, rt_name, rt_sock, rt_pid, sandbox_image,
# container_image, log, stop_pid, crictl_rt.

kubelet_pid=''
kubelet_dir=''
kubelet_cgroup=/slipway-bench-kubelet-$$
kubelet_web_image=registry.k8s.io/e2e-test-images/nginx:1.14-2
kubelet_node=slipway-bench
# Kernel settings kubelet rewrites at start-up (setupKernelTunables) and
# their values before it ran.
kubelet_sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
declare -A kubelet_sysctl_saved=()
kubelet_made_logs=()

# kubelet_version: the Kubernetes version the kubelet on PATH was built from.
kubelet_version() {
	local v
	v=$(go version -m "$(command -v kubelet)" 2>/dev/null | awk '($1 == "dep" || $1 == "mod") && $2 == "k8s.io/kubernetes" {print $3}')
	[[ -n $v ]] || v=$(kubelet --version 2>/dev/null | awk '{print $2}')
	echo "${v:-?}"
}

# free_port FIRST: the first TCP port from FIRST up that nothing listens on.
free_port() {
	local p=$1
	while [[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]]; do p=$((p + 1)); done
	echo "$p"
}

# kubelet_cgroups_make / kubelet_cgroups_remove: the cgroup root the
# kubelet must find existing, in every hierarchy, and its whole tree.
kubelet_cgroup_roots() {
	local h
	for h in /sys/fs/cgroup/*; do
		[[ -d $h && ! -L $h && -e $h/cgroup.procs ]] && echo "$h$kubelet_cgroup"
	done
}
kubelet_cgroups_make() {
	local d f
	for d in $(kubelet_cgroup_roots); do
		mkdir -p "$d"
		# A new cpuset cgroup has no CPUs or memory nodes: its parent's.
		if [[ $d == /sys/fs/cgroup/cpuset/* ]]; then
			for f in cpuset.cpus cpuset.mems; do cat "/sys/fs/cgroup/cpuset/$f" >"$d/$f"; done
		fi
	done
}
kubelet_cgroups_remove() {
	local root d
	for root in $(kubelet_cgroup_roots); do
		[[ -d $root ]] || continue
		while read -r d; do
			rmdir "$d" 2>/dev/null || log "kubelet: cgroup $d left: $(wc -l <"$d/cgroup.procs" 2>/dev/null) processes"
		done < <(find "$root" -depth -type d)
	done
}

# start_kubelet ROUND: a fresh kubelet on the runtime under test.
start_kubelet() {
	kubelet_dir=$work/kubelet-$rt_name-$1
	mkdir -p "$kubelet_dir/manifests" "$kubelet_dir/pod-logs" "$kubelet_dir/volume-plugins"
	kubelet_cgroups_make
	local s d
	for s in "${kubelet_sysctls[@]}"; do
		[[ -n ${kubelet_sysctl_saved[$s]:-} ]] || kubelet_sysctl_saved[$s]=$(cat "/proc/sys/$s")
	done
	kubelet_made_logs=()
	for d in /var/log/pods /var/log/containers; do
		[[ -e $d ]] || kubelet_made_logs+=("$d")
	done
	local port hport
	port=$(free_port 10250)
	hport=$(free_port 10248)
	[[ $hport == "$port" ]] && hport=$(free_port $((port + 1)))
	echo "https://127.0.0.1:$port" >"$kubelet_dir/url"
	cat >"$kubelet_dir/config.yaml" <<-YAML
	apiVersion: kubelet.config.k8s.io/v1beta1
	kind: KubeletConfiguration
	address: 127.0.0.1
	port: $port
	readOnlyPort: 0
	healthzBindAddress: 127.0.0.1
	healthzPort: $hport
	authentication:
	  anonymous: {enabled: true}
	  webhook: {enabled: false}
	authorization: {mode: AlwaysAllow}
	containerRuntimeEndpoint: unix://$rt_sock
	staticPodPath: $kubelet_dir/manifests
	fileCheckFrequency: 5s
	podLogsDir: $kubelet_dir/pod-logs
	volumePluginDir: $kubelet_dir/volume-plugins
	cgroupDriver: cgroupfs
	cgroupRoot: $kubelet_cgroup
	failCgroupV1: false
	failSwapOn: false
	makeIPTablesUtilChains: false
	oomScoreAdj: 0
	resolvConf: /etc/resolv.conf
	imageGCHighThresholdPercent: 100
	imageGCLowThresholdPercent: 99
	evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
	YAML
	kubelet --config "$kubelet_dir/config.yaml" --root-dir "$kubelet_dir/root" --cert-dir "$kubelet_dir/pki" \
		--hostname-override "$kubelet_node" --v=1 >"$kubelet_dir/kubelet.log" 2>&1 &
	kubelet_pid=$!
	local i
	for ((i = 0; i < 600; i++)); do
		[[ $(curl -s "http://127.0.0.1:$hport/healthz" 2>/dev/null) == ok ]] && return 0
		kill -0 "$kubelet_pid" 2>/dev/null || break
		sleep 0.1
	done
	log "kubelet did not become healthy: $(tail -n 20 "$kubelet_dir/kubelet.log")"
	return 1
}

# stop_kubelet: SIGTERM by pid; then the pods it left (by the runtime),
# its cgroups and any pod log directory of ours in the default place.
stop_kubelet() {
	[[ -n $kubelet_pid ]] || return 0
	stop_pid "$kubelet_pid" 30
	kubelet_pid=''
	remove_all_pods
	kubelet_cgroups_remove
	local d s
	for d in /var/log/pods/kbench-*_web-* /var/log/containers/web-*_kbench-*_*.log; do
		[[ -e $d || -L $d ]] && rm -rf "$d"
	done
	for d in "${kubelet_made_logs[@]}"; do
		rmdir "$d" 2>/dev/null || true # only when empty: another kubelet may log there now
	done
	for s in "${!kubelet_sysctl_saved[@]}"; do
		echo "${kubelet_sysctl_saved[$s]}" >"/proc/sys/$s" || log "kubelet: could not restore $s"
	done
	return 0
}

# run_kubelet ROUND: images on the runtime, kubelet, crimeasure kubelet, stop.
run_kubelet() {
	local round=$1 dir=$work/measure/$rt_name/kubelet rc=0 start=$SECONDS img
	mkdir -p "$dir"
	for img in "$kubelet_web_image" "$container_image" $([[ $rt_name == containerd ]] && echo "$sandbox_image"); do
		crictl_rt inspecti "$img" >/dev/null 2>&1 || crictl_rt pull "$img" >/dev/null || log "$rt_name: pulling $img failed"
	done
	log "$rt_name: kubelet: pods ${kubelet_pods}"
	if ! start_kubelet "$round"; then
		cp "$kubelet_dir/kubelet.log" "$dir/kubelet-round-$round.log" 2>/dev/null || true
		echo "kubelet did not become healthy: $(tail -n 3 "$kubelet_dir/kubelet.log" | cut -c1-300)" >"$dir/round-$round.failed"
		stop_kubelet
		return 0
	fi
	"$work/crimeasure" kubelet -endpoint "unix://$rt_sock" -kubelet "$(cat "$kubelet_dir/url")" \
		-manifests "$kubelet_dir/manifests" -node "$kubelet_node" -pods "$kubelet_pods" \
		-web-image "$kubelet_web_image" -log-image "$container_image" \
		-out "$dir/round-$round.json" >"$dir/round-$round.log" 2>&1 &
	critest_pid=$!
	wait "$critest_pid" || rc=$?
	critest_pid=
	if ((rc == 0)); then
		log "$rt_name: kubelet done in $((SECONDS - start))s: $(grep -h '^[0-9]* pods:' "$dir/round-$round.log" | paste -sd ';')"
	else
		log "$rt_name: kubelet FAILED (exit $rc): $(tail -n 3 "$dir/round-$round.log")"
		echo "crimeasure kubelet exit $rc: $(tail -n 2 "$dir/round-$round.log" | cut -c1-300)" >"$dir/round-$round.failed"
		rm -f "$dir/round-$round.json"
	fi
	cp "$kubelet_dir/kubelet.log" "$dir/kubelet-round-$round.log" || true
	stop_kubelet
}
