#!/usr/bin/env bash
# chart-test.sh checks charts/slipway-builder without a cluster:
#  1. helm lint --strict, and helm template with the default values and with
#     each charts/slipway-builder/ci/*-values.yaml;
#  2. hack/chart-test (its own Go module) decodes every rendered object
#     strictly into its Kubernetes type and checks that the pieces agree:
#     slipwayd --builder-only --config FILE, the ConfigMap's TOML, the ports,
#     the TLS, hosts, ROOT and STATE paths, the generated certificates;
#  3. the real slipwayd reads each rendered config.toml (unknown keys and bad
#     values are errors there) and stops at the missing containerd;
#  4. as root with containerd and runc on PATH: slipwayd serves the builder
#     with the rendered config and the generated certificates on loopback,
#     and buildctl and `slipway build` reach it with mutual TLS.
#  5. values the chart must refuse fail to render.
#
# Environment: HELM (default helm), SLIPWAYD_BIN and SLIPWAY_BIN (default:
# built from this tree into a temporary directory), CHART_TEST_LIVE=0 skips
# step 4, KEEP=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
CHART=$REPO/charts/slipway-builder
HELM=${HELM:-helm}
KUBE_VERSION=v1.37.0
NS=ci-builds

log() { echo "chart-test: $*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}

command -v "$HELM" >/dev/null || fail "$HELM not found: run hack/install-deps.sh"
log "$("$HELM" version --short)"

TMP=$(mktemp -d /tmp/chart-test.XXXXXX)
SLIPWAYD_PID=
# shellcheck source=hack/live-slipwayd.sh
source hack/live-slipwayd.sh
trap live_cleanup EXIT

# --- 1. lint and render --------------------------------------------------
app_version=$(sed -n 's/^var version = "\(.*\)"$/\1/p' cmd/slipwayd/main.go)
chart_app_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$CHART/Chart.yaml")
[[ -n $app_version && $app_version == "$chart_app_version" ]] ||
	fail "Chart.yaml appVersion \"$chart_app_version\" is not slipwayd's version \"$app_version\" (cmd/slipwayd/main.go)"
log "appVersion $chart_app_version is slipwayd's version"

"$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART"
for f in "$CHART"/ci/*-values.yaml; do
	"$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" -f "$f"
done

render() { # NAME [helm args...]: renders into $TMP/NAME.yaml
	local name=$1
	shift
	"$HELM" template "$name" "$CHART" --namespace "$NS" --kube-version "$KUBE_VERSION" "$@" >"$TMP/$name.yaml"
}
render default
render full -f "$CHART/ci/full-values.yaml"
render existing -f "$CHART/ci/existing-secret-values.yaml"
log "rendered default, full and existing-secret values"

# NOTES.txt: helm template skips it, so a copy of the chart renders it
# through tpl into a ConfigMap.
cp -r "$CHART" "$TMP/notes-chart"
mv "$TMP/notes-chart/templates/NOTES.txt" "$TMP/notes-chart/notes.txt"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n' \
	>"$TMP/notes-chart/templates/notes.yaml"
for v in "" ci/full-values.yaml ci/existing-secret-values.yaml; do
	"$HELM" template full "$TMP/notes-chart" --namespace "$NS" --kube-version "$KUBE_VERSION" ${v:+-f "$CHART/$v"} \
		--show-only templates/notes.yaml >"$TMP/notes.yaml"
	port=1234
	[[ $v == *existing* ]] && port=8372
	for want in "tcp://full-slipway-builder.$NS.svc:$port" "slipway build --addr" "buildctl --addr" "--driver remote"; do
		grep -qF -- "$want" "$TMP/notes.yaml" || fail "NOTES.txt (${v:-default values}) lacks \"$want\""
	done
done
log "NOTES.txt renders with the Service's address"

# --- 2. check the rendered objects ----------------------------------------
log "building hack/chart-test"
(cd hack/chart-test && go build -o "$TMP/chart-test" .)
check() { # NAME [chart-test flags...]
	local name=$1
	shift
	log "checking $name"
	"$TMP/chart-test" -rendered "$TMP/$name.yaml" -namespace "$NS" -app-version "$app_version" -out "$TMP/$name" "$@" ||
		fail "$name: rendered objects"
}
check default -image "ghcr.io/slipway-dev/slipwayd:$app_version" -probe tcp -pvc=true -generated-tls=true -port 1234
check full -image registry.ci.internal/slipway/slipwayd:test -probe buildctl -pvc=true -generated-tls=true -port 1234 \
	-hosts docker.io,registry.ci.internal:5000 -tls-names builder.ci.internal,10.0.0.10 -scheduling
check existing -image "ghcr.io/slipway-dev/slipwayd:$app_version" -probe tcp -pvc=false -generated-tls=false -port 8372

# --- 3. slipwayd reads the rendered configs ---------------------------------
BIN=$TMP/bin
if [[ -z ${SLIPWAYD_BIN:-} || -z ${SLIPWAY_BIN:-} ]]; then
	log "building slipwayd and slipway"
	go build -o "$BIN/" ./cmd/slipwayd ./cmd/slipway
fi
SLIPWAYD_BIN=${SLIPWAYD_BIN:-$BIN/slipwayd}
SLIPWAY_BIN=${SLIPWAY_BIN:-$BIN/slipway}

# With a containerd binary that does not exist, slipwayd exits 1 right after
# the config is loaded and validated (exit 2 is a config error).
for name in default full existing; do
	dir=$TMP/$name/dry
	mkdir -p "$dir"
	rc=0
	"$SLIPWAYD_BIN" --config "$TMP/$name/config.toml" --builder-only --root "$dir/root" --state "$dir/state" \
		--containerd-binary "$dir/no-containerd" --metrics-address= >"$dir/log" 2>&1 || rc=$?
	if ((rc != 1)) || ! grep -q 'embedded containerd: containerd binary' "$dir/log"; then
		cat "$dir/log" >&2
		fail "$name: slipwayd refused the rendered config.toml (exit $rc)"
	fi
	log "$name: slipwayd accepts the rendered config.toml"
done

# --- 4. slipwayd serves the builder with the rendered config ---------------
live_ready() {
	[[ ${CHART_TEST_LIVE:-1} != 0 ]] || { log "SKIP live run: CHART_TEST_LIVE=0"; return 1; }
	[[ $(id -u) == 0 ]] || { log "SKIP live run: not root"; return 1; }
	local b
	for b in containerd containerd-shim-runc-v2 runc; do
		command -v "$b" >/dev/null || { log "SKIP live run: $b not on PATH"; return 1; }
	done
}

free_port() {
	local p i
	for ((i = 0; i < 50; i++)); do
		p=$((20000 + RANDOM % 20000))
		if [[ -z $(ss -Htln "sport = :$p") ]]; then
			echo "$p"
			return
		fi
	done
	fail "no free port"
}

if live_ready; then
	LIVE=$TMP/live
	RENDER=$TMP/full
	mkdir -p "$LIVE"
	PORT=$(free_port)
	ADDR=tcp://127.0.0.1:$PORT
	SERVER_NAME=$(cat "$RENDER/server-name")
	# The rendered config as it is; flags move ROOT, STATE, the hosts
	# directory, the TLS files and the listener (loopback, a free port) to
	# where the pod's volumes would be.
	"$SLIPWAYD_BIN" --config "$RENDER/config.toml" --builder-only \
		--root "$LIVE/root" --state "$LIVE/state" --registry-config-path "$RENDER/certs.d" \
		--builder-tcp "127.0.0.1:$PORT" --builder-tls-cert "$RENDER/server/tls.crt" \
		--builder-tls-key "$RENDER/server/tls.key" --builder-tls-ca "$RENDER/server/ca.crt" \
		--metrics-address 127.0.0.1:0 >"$LIVE/slipwayd.log" 2>&1 &
	SLIPWAYD_PID=$!
	for ((i = 0; i < 120; i++)); do
		kill -0 "$SLIPWAYD_PID" 2>/dev/null || fail "slipwayd exited"
		grep -q "slipwayd serving the builder.*127.0.0.1:$PORT" "$LIVE/slipwayd.log" && break
		sleep 0.5
	done
	grep -q "slipwayd serving the builder.*127.0.0.1:$PORT" "$LIVE/slipwayd.log" || fail "slipwayd is not serving the builder on $ADDR"
	log "slipwayd serves the builder on $ADDR (pid $SLIPWAYD_PID)"

	# What the tcpSocket probe does: connect and close.
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") || fail "TCP probe: cannot connect to $PORT"
	log "tcpSocket probe: connects"

	if command -v buildctl >/dev/null; then
		# The buildctl probe's command, with STATE where this run keeps it.
		timeout 30 buildctl --addr "unix://$LIVE/state/buildkit.sock" debug workers >/dev/null ||
			fail "buildctl probe command failed"
		log "buildctl probe command: ok"
		timeout 30 buildctl --addr "$ADDR" --tlsservername "$SERVER_NAME" --tlscacert "$RENDER/client/ca.crt" \
			--tlscert "$RENDER/client/tls.crt" --tlskey "$RENDER/client/tls.key" debug workers >"$LIVE/workers" ||
			fail "buildctl with the generated client certificate failed"
		log "buildctl over mutual TLS as $SERVER_NAME: $(awk 'NR==2 {print $1, $2}' "$LIVE/workers")"
		if timeout 30 buildctl --addr "$ADDR" --tlsservername "$SERVER_NAME" --tlscacert "$RENDER/client/ca.crt" \
			debug workers >/dev/null 2>&1; then
			fail "buildctl without a client certificate got in"
		fi
		log "buildctl without a client certificate: refused"
	else
		log "SKIP buildctl checks: buildctl not on PATH"
	fi

	# A build through the Service's name, as a CI job does it.
	ctx=$LIVE/context
	mkdir -p "$ctx"
	echo "built through the chart's config" >"$ctx/hello.txt"
	printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' >"$ctx/Dockerfile"
	timeout 120 "$SLIPWAY_BIN" build --addr "$ADDR" --tls-server-name "$SERVER_NAME" --tls-ca "$RENDER/client/ca.crt" \
		--tls-cert "$RENDER/client/tls.crt" --tls-key "$RENDER/client/tls.key" --progress plain \
		-o "type=local,dest=$LIVE/out" "$ctx" >"$LIVE/build.log" 2>&1 || {
		cat "$LIVE/build.log" >&2
		fail "slipway build over mutual TLS failed"
	}
	cmp -s "$ctx/hello.txt" "$LIVE/out/hello.txt" || fail "the build's output is not the context's file"
	log "slipway build over mutual TLS: ok"

	kill -TERM "$SLIPWAYD_PID"
	rc=0
	wait "$SLIPWAYD_PID" || rc=$?
	SLIPWAYD_PID=
	((rc == 0)) || fail "slipwayd exited $rc on SIGTERM"
	log "slipwayd stopped cleanly"
fi

# --- 5. values the chart refuses ------------------------------------------
refuse() { # WHAT [helm args...]
	local what=$1
	shift
	if "$HELM" template refused "$CHART" --kube-version "$KUBE_VERSION" "$@" >/dev/null 2>"$TMP/refused.err"; then
		fail "rendered with $what"
	fi
	log "refuses $what: $(grep -o 'error calling fail: .*\|execution error.*' "$TMP/refused.err" | head -1 | sed 's/.*: //')"
}
refuse "both tls.generate and tls.existingSecret" --set tls.existingSecret=x
refuse "no TLS" --set tls.generate=false
refuse "an unknown probe mode" --set probes.mode=http
refuse "a registry host with a slash" --set-string 'registry.hosts.a/b=x'

log "all checks passed"
