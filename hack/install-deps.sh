#!/usr/bin/env bash
# install-deps.sh installs the pinned tools slipway runs on and is tested with.
# Idempotent: a tool already installed at its pinned version is skipped.
# Binaries go to $PREFIX/bin (default /usr/local/bin); CNI plugins to $CNI_BIN_DIR.
# `install-deps.sh runtime` installs only what slipwayd runs on (containerd,
# containerd-shim-runc-v2, runc, the CNI plugins) and the Debian packages
# they need: hack/install.sh uses it for a node (WITH_DEPS=1).
set -euo pipefail

CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.2
CNI_PLUGINS_VERSION=v1.10.0
CRI_TOOLS_VERSION=v1.37.0
BUILDKIT_VERSION=v0.34.2
# kubelet for the kubelet e2e suite, built through the wrapper module in
# hack/kubelet (its go.mod pins the Kubernetes version and its staging modules).
KUBELET_VERSION=v1.37.2
# helm renders and lints charts/slipway-builder (hack/chart-test.sh). The
# ldflags are helm's release ones: its version, and the Kubernetes version of
# its client-go (v0.37) as the default for `helm template` and lint.
HELM_VERSION=v3.22.0
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION
 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37
 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37"

PREFIX=${PREFIX:-/usr/local}
BIN_DIR=$PREFIX/bin
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
# systemd: only for systemd-analyze (make install-test verifies the unit);
# its postinst starts nothing where systemd is not running.
DEBIAN_PACKAGES=(libseccomp-dev pkg-config iptables iproute2 busybox-static util-linux mount tmux socat systemd)
# runc's build needs libseccomp-dev and pkg-config; the CNI plugins iptables.
RUNTIME_DEBIAN_PACKAGES=(libseccomp-dev pkg-config iptables)

log() { echo "install-deps: $*" >&2; }

# has_module_version BIN MODULE VERSION: BIN exists and was built from MODULE@VERSION.
has_module_version() {
	[[ -x $1 ]] && go version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '$1=="mod" && $2==m && $3==v {found=1} END {exit !found}'
}

# install_debian_packages PACKAGE...
install_debian_packages() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "apt-get install ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

# go_install DEST_DIR MODULE VERSION PKG [go build flags...]
go_install() {
	local dest=$1 module=$2 version=$3 pkg=$4
	shift 4
	local name=${pkg##*/}
	if has_module_version "$dest/$name" "$module" "$version"; then
		return
	fi
	log "building $pkg@$version"
	local tmp
	tmp=$(mktemp -d)
	GOBIN=$tmp go install "$@" "$pkg@$version"
	install -D -m 0755 "$tmp/$name" "$dest/$name"
	rm -rf "$tmp"
}

# module_dir MODULE VERSION: the module's directory in the module cache, for
# binaries `go install` cannot build (test binaries, exclude directives).
module_dir() {
	go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# critest is a test binary, which carries no module version: a stamp file
# beside it records the version it was built from.
install_critest() {
	local stamp=$PREFIX/share/slipway/critest.version
	if [[ -x $BIN_DIR/critest && $(cat "$stamp" 2>/dev/null) == "$CRI_TOOLS_VERSION" ]]; then
		return
	fi
	log "building critest@$CRI_TOOLS_VERSION"
	local dir
	dir=$(module_dir sigs.k8s.io/cri-tools "$CRI_TOOLS_VERSION")
	(cd "$dir" && GOFLAGS=-mod=mod go test -c -o "$BIN_DIR/critest" ./cmd/critest)
	mkdir -p "$(dirname "$stamp")"
	echo "$CRI_TOOLS_VERSION" >"$stamp"
}

install_buildkit() {
	if has_module_version "$BIN_DIR/buildctl" github.com/moby/buildkit "$BUILDKIT_VERSION" &&
		has_module_version "$BIN_DIR/buildkitd" github.com/moby/buildkit "$BUILDKIT_VERSION"; then
		return
	fi
	log "building buildkitd and buildctl@$BUILDKIT_VERSION"
	local dir
	dir=$(module_dir github.com/moby/buildkit "$BUILDKIT_VERSION")
	(cd "$dir" && GOFLAGS=-mod=mod go build -o "$BIN_DIR/" ./cmd/buildkitd ./cmd/buildctl)
}

# install_kubelet builds cmd/kubelet through hack/kubelet (go version -m
# still names k8s.io/kubernetes, the main package's module, as "mod"). The
# ldflags stamp the version that `kubelet --version` and the node status
# report, as Kubernetes' release build does.
install_kubelet() {
	if has_module_version "$BIN_DIR/kubelet" k8s.io/kubernetes "$KUBELET_VERSION"; then
		return
	fi
	local dir
	dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/kubelet" && pwd)
	local have
	have=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
	if [[ $have != "$KUBELET_VERSION" ]]; then
		log "$dir/go.mod requires k8s.io/kubernetes $have, not $KUBELET_VERSION"
		exit 1
	fi
	log "building kubelet@$KUBELET_VERSION"
	local minor=${KUBELET_VERSION#v1.}
	minor=${minor%%.*}
	local v=k8s.io/component-base/version
	local ldflags="-s -w -X $v.gitVersion=$KUBELET_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
	local tmp
	tmp=$(mktemp -d)
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/kubelet" k8s.io/kubernetes/cmd/kubelet)
	install -D -m 0755 "$tmp/kubelet" "$BIN_DIR/kubelet"
	rm -rf "$tmp"
}

main() {
	command -v go >/dev/null || { log "go is required"; exit 1; }
	local only=${1:-}
	[[ -z $only || $only == runtime ]] || { log "unknown argument \"$only\" (want none or runtime)"; exit 2; }
	if [[ $only == runtime ]]; then
		install_debian_packages "${RUNTIME_DEBIAN_PACKAGES[@]}"
	else
		install_debian_packages "${DEBIAN_PACKAGES[@]}"
	fi
	mkdir -p "$BIN_DIR" "$CNI_BIN_DIR"
	go_install "$BIN_DIR" github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd
	go_install "$BIN_DIR" github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
	CGO_ENABLED=1 go_install "$BIN_DIR" github.com/opencontainers/runc "$RUNC_VERSION" github.com/opencontainers/runc -tags seccomp
	local p
	for p in main/bridge main/loopback ipam/host-local meta/portmap meta/firewall meta/tuning meta/bandwidth; do
		go_install "$CNI_BIN_DIR" github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION" "github.com/containernetworking/plugins/plugins/$p"
	done
	if [[ $only == runtime ]]; then
		log "containerd, its shim, runc and the CNI plugins installed"
		return
	fi
	go_install "$BIN_DIR" sigs.k8s.io/cri-tools "$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
	install_critest
	go_install "$BIN_DIR" helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm -ldflags "$HELM_LDFLAGS"
	if [[ ${INSTALL_BUILDKIT:-0} == 1 ]]; then
		install_buildkit
	fi
	if [[ ${INSTALL_KUBELET:-0} == 1 ]]; then
		install_kubelet
	fi
	log "all pinned tools installed"
}

main "$@"
