package e2e

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// slipwaydImage is the name the suite builds hack/image/Dockerfile under:
// the builder chart's default repository with a tag of the suite's own.
const slipwaydImage = "ghcr.io/slipway-dev/slipwayd:e2e"

// imageDir holds the image's Dockerfile and context script, relative to
// this package.
const imageDir = "../../hack/image"

// runInImage runs command in a new container of pod from image and returns
// its log and exit code.
func runInImage(ctx context.Context, pod testPod, name, image string, command ...string) (string, int32) {
	GinkgoHelper()
	resp, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.ID, SandboxConfig: pod.Config,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  command,
			LogPath:  name + ".log",
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			}},
		},
	})
	Expect(err).NotTo(HaveOccurred())
	startContainer(ctx, resp.ContainerId)
	st := waitExited(ctx, resp.ContainerId)
	return strings.Join(containerLog(pod, name), "\n"), st.ExitCode
}

var _ = Describe("The slipwayd image", Ordered, func() {
	// slipway builds slipway: hack/image/context.sh assembles the context
	// from the binaries under test (SLIPWAYD_BIN's directory) and the tools
	// of `make deps`, and the suite's daemon builds hack/image/Dockerfile,
	// so the image lands in the node's store.
	BeforeAll(func(ctx SpecContext) {
		work, err := os.MkdirTemp("", "slipway-image-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, work)
		contextDir := filepath.Join(work, "context")
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(imageDir, "context.sh"), contextDir)
		cmd.Env = append(os.Environ(), "BIN="+filepath.Dir(os.Getenv("SLIPWAYD_BIN")))
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "context.sh:\n%s", out)
		GinkgoWriter.Printf("%s", out)

		slipwayBuild(ctx, builderAddr(), "--progress=plain", "-f", filepath.Join(imageDir, "Dockerfile"),
			"--build-arg", "VERSION=e2e", "-t", slipwaydImage, contextDir).succeeded()
		DeferCleanup(func(ctx context.Context) {
			_, err := imageSvc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: slipwaydImage}})
			Expect(err).NotTo(HaveOccurred())
		})
	})

	It("is listed by the CRI, and every binary in it runs there", func(ctx SpecContext) {
		Expect(criImage(ctx, slipwaydImage)).NotTo(BeNil(), "the CRI lists the image slipway built")

		img := inspectImage(ctx, slipwaydImage)
		Expect(img.config.Config.Entrypoint).To(Equal([]string{"/usr/local/bin/slipwayd"}))
		Expect(img.config.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.version", "e2e"))
		Expect(img.manifest.Layers).To(HaveLen(3), "base, tools and slipway layers")
		Expect(img.files).To(HaveKeyWithValue("/tmp", imageFile{typ: tar.TypeDir, mode: 0o1777}), "/tmp is root's, mode 1777")
		Expect(img.text("/etc/passwd")).To(HavePrefix("root:x:0:0:"))
		Expect(img.has("/etc/ssl/certs/ca-certificates.crt")).To(BeTrue())

		pod := runTestPod(ctx, "slipwayd-image")
		runs := map[string][]string{
			"slipwayd":   {"slipwayd", "--version"},
			"slipway":    {"slipway", "version"},
			"containerd": {"containerd", "--version"},
			"shim":       {"containerd-shim-runc-v2", "-v"},
			"runc":       {"runc", "--version"},
		}
		want := map[string]string{
			"slipwayd": "slipwayd ", "slipway": "slipway ", "containerd": "containerd github.com/containerd/containerd/v2 2.4.2",
			"shim": "Version:  2.4.2", "runc": "runc version 1.5.2",
		}
		// The CNI plugins print what they are when run without CNI_COMMAND.
		for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap", "bandwidth"} {
			runs[plugin] = []string{"/opt/cni/bin/" + plugin}
			want[plugin] = "CNI " + plugin + " plugin"
		}
		for _, f := range []string{"/usr/local/bin/slipway-infra", "/usr/local/bin/slipway-logger"} {
			Expect(img.file(f).mode&0o111).NotTo(BeZero(), "%s is executable", f)
		}
		for name, command := range runs {
			log, code := runInImage(ctx, pod, name, slipwaydImage, command...)
			Expect(code).To(BeZero(), "%s in the image: %s", strings.Join(command, " "), log)
			Expect(log).To(ContainSubstring(want[name]), "%s in the image", strings.Join(command, " "))
		}
	})

	It("runs the builder as the chart's pod does and builds a RUN step over mutual TLS", func(ctx SpecContext) {
		port := freeLoopbackPort()
		chart := renderChartPod(ctx, "image.tag=e2e", "builder.listenHost=127.0.0.1", "builder.port="+strconv.Itoa(port),
			"persistence.enabled=false", "tls.generate=false", "tls.existingSecret=e2e-tls", "logLevel=debug")
		Expect(chart.Image).To(Equal(slipwaydImage), "the chart's default repository is the image's name")
		Expect(chart.Privileged).To(BeTrue())
		Expect(chart.ConfigTOML).To(ContainSubstring(`tcp_address = "127.0.0.1:` + strconv.Itoa(port) + `"`))
		Expect(chart.ContainerPort).To(BeEquivalentTo(port))
		// The pod is on the node's network here, where slipwayd's default
		// metrics address (127.0.0.1:9898, the pod's own loopback in the
		// chart's pod network) may be another slipwayd's: take a free port.
		chart.Args = append(chart.Args, "--metrics-address", "127.0.0.1:0")

		// The chart's volumes: ROOT (its PVC) on a host directory, STATE
		// (its emptyDir), the ConfigMap's config.toml, the registry hosts
		// (the suite's, which mirror docker.io and registry.k8s.io to the
		// test registry) and the TLS Secret.
		work := GinkgoT().TempDir()
		DeferCleanup(harness.UnmountUnder, work) // runs before TempDir's removal
		Expect(os.Chmod(work, 0o711)).To(Succeed())
		root, state, configDir := filepath.Join(work, "root"), filepath.Join(work, "state"), filepath.Join(work, "config")
		for _, d := range []string{root, state, configDir} {
			Expect(os.MkdirAll(d, 0o755)).To(Succeed())
		}
		Expect(os.WriteFile(filepath.Join(configDir, "config.toml"), []byte(chart.ConfigTOML), 0o644)).To(Succeed())
		pki := writeTestPKI(filepath.Join(work, "pki"))
		volumes := map[string]string{
			"root": root, "state": state, "config": configDir, "registry-hosts": suiteHostsDir,
			"tls": pki.tlsVolume(filepath.Join(work, "tls")),
		}

		// A privileged pod on the host network (the port is on loopback).
		config := podConfig("slipwayd-chart")
		config.LogDirectory = filepath.Join(work, "logs")
		config.Linux.SecurityContext.Privileged = true
		config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		pod := testPod{ID: runPod(ctx, config), Config: config}
		resp, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: pod.ID, Config: chart.containerConfig(volumes), SandboxConfig: pod.Config,
		})
		Expect(err).NotTo(HaveOccurred())
		id := resp.ContainerId
		startContainer(ctx, id)
		waitListening(ctx, port, id, pod)
		Expect(filepath.Join(state, "buildkit.sock")).To(BeAnExistingFile(), "STATE is on its volume")

		// A RUN step is a runc container of the containerd inside the
		// image: runc in runc.
		buildContext := filepath.Join(work, "build")
		Expect(os.MkdirAll(buildContext, 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(buildContext, "Dockerfile"), []byte("FROM "+busyboxImage+"\n"+
			"RUN echo \"built in the slipwayd image: $((6*7))\" >/out.txt && cat /proc/self/cgroup >/cgroup.txt\n"+
			"FROM scratch\nCOPY --from=0 /out.txt /cgroup.txt /\n"), 0o644)).To(Succeed())
		out := filepath.Join(work, "out")
		slipwayBuild(ctx, "tcp://127.0.0.1:"+strconv.Itoa(port), append(pki.tlsArgs(),
			"--progress=plain", "-o", "type=local,dest="+out, buildContext)...).succeeded()
		Expect(os.ReadFile(filepath.Join(out, "out.txt"))).To(BeEquivalentTo("built in the slipwayd image: 42\n"))
		cgroups, err := os.ReadFile(filepath.Join(out, "cgroup.txt"))
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("the RUN step's cgroups:\n%s", cgroups)
		Expect(filepath.Join(root, "containerd", "io.containerd.snapshotter.v1.overlayfs")).To(BeADirectory(), "ROOT is on its volume")
		noClientCert := slipwayBuild(ctx, "tcp://127.0.0.1:"+strconv.Itoa(port), "--tls-ca", pki.caFile,
			"--progress=plain", "-o", "type=local,dest="+filepath.Join(work, "refused"), buildContext)
		Expect(noClientCert.err).To(HaveOccurred(), "a client without a certificate is refused")
		GinkgoWriter.Printf("without a client certificate:\n%s\n", harness.Tail(noClientCert.stderr, 5))
		// With TLS 1.3 the client may write before the server's "certificate
		// required" alert arrives, and then sees a broken pipe instead: the
		// message is not asserted, only that nothing was built.
		Expect(filepath.Join(work, "refused")).NotTo(BeAnExistingFile())

		// Stopped as kubelet stops it: SIGTERM, the chart's grace period.
		_, err = runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: chart.TerminationSecs})
		Expect(err).NotTo(HaveOccurred())
		st := containerStatus(ctx, id)
		log := strings.Join(containerLog(pod, "slipwayd"), "\n")
		Expect(st.ExitCode).To(BeZero(), "slipwayd exits cleanly on SIGTERM; log:\n%s", harness.Tail(log, 40))
		Expect(log).To(ContainSubstring("slipwayd serving the builder"))
		Expect(filepath.Join(state, "buildkit.sock")).NotTo(BeAnExistingFile())

		// The nested containerd's snapshot mounts lived in the container's
		// mount namespace: with the pod gone, nothing is mounted below the
		// volumes.
		stopPod(ctx, pod.ID)
		removePod(ctx, pod.ID)
		Expect(mountsUnder(work)).To(BeZero())
	})
})
