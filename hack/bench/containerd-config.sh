# shellcheck shell=bash
# containerd-config.sh: the configuration of the reference runtime of the
# benchmarks, containerd's own CRI plugin on a containerd of its own (root,
# state and sockets under a bench work dir), sourced by hack/bench/cri.sh
# (the CRI, scale, memory and kubelet sections) and hack/bench/build.sh.
#
# containerd_cri_config ROOT STATE CERTS_DIR CNI_CONF_DIR CNI_BIN_DIR SANDBOX_IMAGE
#   prints the config (version 3, containerd 2.x; keys from docs/cri/config.md
#   and internal/cri/config of containerd v2.4.2): gRPC socket STATE/containerd.sock,
#   runc (the one in PATH) with its root in STATE/runc and cgroupfs, overlayfs,
#   registry hosts from CERTS_DIR, the first conflist of CNI_CONF_DIR with the
#   plugins in CNI_BIN_DIR, SANDBOX_IMAGE pinned, NRI off, negative OOM score
#   adjustments clamped (this machine lacks CAP_SYS_RESOURCE), streaming on
#   loopback.
containerd_cri_config() {
	local root=$1 state=$2 certs=$3 cni_conf=$4 cni_bin=$5 sandbox=$6
	cat <<-TOML
	version = 3
	root = "$root"
	state = "$state"

	[grpc]
	  address = "$state/containerd.sock"

	[ttrpc]
	  address = "$state/containerd.sock.ttrpc"

	[debug]
	  level = "info"

	[plugins."io.containerd.internal.v1.opt"]
	  path = "$root/opt"

	[plugins."io.containerd.nri.v1.nri"]
	  disable = true

	[plugins."io.containerd.cri.v1.images"]
	  snapshotter = "overlayfs"
	  [plugins."io.containerd.cri.v1.images".pinned_images]
	    sandbox = "$sandbox"
	  [plugins."io.containerd.cri.v1.images".registry]
	    config_path = "$certs"

	[plugins."io.containerd.cri.v1.runtime"]
	  restrict_oom_score_adj = true
	  netns_mounts_under_state_dir = true
	  [plugins."io.containerd.cri.v1.runtime".containerd]
	    default_runtime_name = "runc"
	    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
	      runtime_type = "io.containerd.runc.v2"
	      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
	        BinaryName = "$(command -v runc)"
	        Root = "$state/runc"
	        SystemdCgroup = false
	  [plugins."io.containerd.cri.v1.runtime".cni]
	    bin_dirs = ["$cni_bin"]
	    conf_dir = "$cni_conf"
	    max_conf_num = 1

	[plugins."io.containerd.grpc.v1.cri"]
	  stream_server_address = "127.0.0.1"
	  stream_server_port = "0"
	TOML
}
