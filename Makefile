# slipway: a Kubernetes node runtime. `make help` lists the targets.
GO      ?= go
BIN     ?= $(CURDIR)/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FOCUS   ?=
PREFIX  ?= /usr/local
DESTDIR ?=
# make image: the image's name (the chart's default), its tag (the chart's
# appVersion, slipwayd's version) and the builder that builds it.
IMAGE         ?= ghcr.io/slipway-dev/slipwayd
IMAGE_TAG     ?= $(shell sed -n 's/^var version = "\(.*\)"$$/\1/p' cmd/slipwayd/main.go)
BUILDER_ADDR  ?= unix:///run/slipway/buildkit.sock
IMAGE_BUILD_FLAGS ?=
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /test/e2e)

.PHONY: help build deps run test unit fuzz e2e e2e-kubelet critest critest-websocket chart-test install install-test lint clean bench image

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build slipwayd, slipway and slipway-infra into ./bin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/slipwayd ./cmd/slipway
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $(BIN)/ ./cmd/slipway-infra ./cmd/slipway-logger

deps: ## install the pinned tools (containerd, runc, CNI plugins, crictl, critest, buildctl for the build e2e, kubelet for e2e-kubelet)
	INSTALL_BUILDKIT=1 INSTALL_KUBELET=1 bash hack/install-deps.sh

image: build ## build the slipwayd image with `slipway build` on a running slipwayd (BUILDER_ADDR, IMAGE_BUILD_FLAGS; IMAGE, IMAGE_TAG; PUSH=1 pushes it)
	bash hack/image/context.sh $(BIN)/image-context
	$(BIN)/slipway build --addr $(BUILDER_ADDR) -f hack/image/Dockerfile --build-arg VERSION=$(VERSION) \
		-t $(IMAGE):$(IMAGE_TAG) $(if $(PUSH),--push) $(IMAGE_BUILD_FLAGS) $(BIN)/image-context

run: build ## run slipwayd with its embedded defaults (as root)
	$(BIN)/slipwayd

test: lint unit fuzz chart-test install-test e2e e2e-kubelet critest-websocket critest ## everything CI runs: lint, unit tests, brief fuzzing, the Helm chart check, the install check, e2e suites (faults and a 2-minute soak included), the real-kubelet suite, critest Streaming over websocket, the whole critest suite

unit: ## unit tests
	$(GO) test -count=1 $(UNIT_PKGS)

fuzz: ## each fuzz target briefly (FUZZTIME, default 10s): CRI request validation, OCI spec generation
	bash hack/fuzz.sh $(or $(FUZZTIME),10s)

e2e: build ## end-to-end suites against a real slipwayd and containerd (as root)
	SLIPWAYD_BIN=$(BIN)/slipwayd SLIPWAY_BIN=$(BIN)/slipway $(GO) test -count=1 -timeout 30m $$($(GO) list ./test/e2e/... | grep -v /test/e2e/kubelet) -ginkgo.v

# A failed kubelet spec keeps both whole logs and the CRI's container list in /tmp/slipway-kubelet-e2e-failed-*.
e2e-kubelet: build ## a real kubelet v1.37.2 (make deps) with static pods on a fresh slipwayd: probes, restarts, logs, exec, port-forward, stats, teardown (as root)
	SLIPWAYD_BIN=$(BIN)/slipwayd KUBELET_BIN=$(or $(KUBELET_BIN),/usr/local/bin/kubelet) $(GO) test -count=1 -timeout 30m ./test/e2e/kubelet/ -ginkgo.v

critest: build ## critest against slipwayd with the test registry; FOCUS=regexp narrows it
	bash hack/critest.sh $(BIN)/slipwayd "$(FOCUS)"

chart-test: build ## lint and render the Helm chart, check it, run slipwayd on its config
	SLIPWAYD_BIN=$(BIN)/slipwayd SLIPWAY_BIN=$(BIN)/slipway bash hack/chart-test.sh

install: build ## install the binaries, slipwayd.service and /etc/slipway/config.toml (DESTDIR, PREFIX; WITH_DEPS=1 adds containerd, runc, CNI plugins)
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BIN="$(BIN)" WITH_DEPS="$(WITH_DEPS)" bash hack/install.sh

install-test: build ## install into a temporary DESTDIR, check the files, systemd-analyze verify the unit, run the installed slipwayd
	BIN="$(BIN)" bash hack/install-test.sh

critest-websocket: build ## critest's Streaming specs with the websocket clients
	CRITEST_FLAGS="--websocket-exec --websocket-attach --websocket-portforward" bash hack/critest.sh $(BIN)/slipwayd "Streaming"

critest-images: build ## critest's image manager specs
	bash hack/critest.sh $(BIN)/slipwayd "Image Manager"

bench: build ## benchmarks against containerd's CRI, buildkitd and a real kubelet into docs/benchmarks.md (as root; ROUNDS, SAMPLES, SECTIONS=cri,scale,memory,build,kubelet, PROFILE=1)
	bash hack/bench/bench.sh --no-build --rounds $(or $(ROUNDS),2) --samples $(or $(SAMPLES),40) \
		$(if $(SECTIONS),--sections $(SECTIONS)) $(if $(PROFILE),--profile $(CURDIR)/bench-profiles) $(if $(KUBELET),--kubelet)

lint: ## gofmt, go vet, and go.mod tidy
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

clean:
	rm -rf $(BIN)
