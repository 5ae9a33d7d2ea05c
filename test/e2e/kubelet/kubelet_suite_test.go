// Package kubelet runs a real kubelet (v1.37.2, built by `make deps`)
// standalone, with static pods and no API server, against a fresh slipwayd
// with its own root, state and socket, pulling from the project's test
// registry on 127.0.0.1. Kubelet's own API on 127.0.0.1:10250 says what
// kubelet sees (pod status, logs, exec, port-forward, stats); the CRI says
// what slipwayd holds. Run as root with `make e2e-kubelet`.
package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	registry "github.com/slipway-dev/slipway/hack/testimages/testregistry"
	"github.com/slipway-dev/slipway/test/e2e/harness"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Shared by every spec; set up once in BeforeSuite.
var (
	daemon     *slipwayd
	node       *kubelet
	host       *nodeHost
	runtimeSvc runtimeapi.RuntimeServiceClient
	imageSvc   runtimeapi.ImageServiceClient
)

// busyboxImage has busybox-static's applets (sh, httpd, nc, wget) as hard
// links; its tag is not "latest", so kubelet pulls it only if not present.
const busyboxImage = "public.ecr.aws/docker/library/busybox:1"

// testNet is the suite's pod network (portmap serves hostPort), apart from
// the node's and from test/e2e's.
var testNet = &harness.Network{Name: "slipway-kubelet-e2e", Bridge: "swkubelet0", Subnet: "10.252.40.0/24"}

// nginxImage runs the test set's web server on port 80 (hack/testimages/progs/webserver).
const nginxImage = registry.NginxImage

func TestKubelet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the kubelet suite needs root: it runs containerd and kubelet")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "slipway under kubelet")
}

var _ = BeforeSuite(func(ctx context.Context) {
	work, err := os.MkdirTemp("", "slipway-kubelet-e2e-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, work)
	Expect(os.Chmod(work, 0o711)).To(Succeed())
	// Runs before RemoveAll: kubelet's rshared bind mount of its root dir,
	// and whatever a failed spec left mounted.
	DeferCleanup(harness.UnmountUnder, work)

	testRegistry, err := registry.Start(ctx, registry.Options{Addr: "127.0.0.1:0"})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(testRegistry.Close)
	hostsDir := filepath.Join(work, "certs.d")
	Expect(registry.WriteHostsDir(hostsDir, testRegistry.Addr())).To(Succeed())

	Expect(testNet.Write(work)).To(Succeed())
	DeferCleanup(testNet.Remove)
	daemon = startSlipwayd(ctx, work, hostsDir, testNet.ConfDir)
	DeferCleanup(daemon.stop)
	runtimeSvc = runtimeapi.NewRuntimeServiceClient(daemon.Conn)
	imageSvc = runtimeapi.NewImageServiceClient(daemon.Conn)
	// Cleanups run last first: kubelet stops, the pods it did not get to
	// remove (its garbage collector runs once a minute) go through the CRI,
	// then the node gets its cgroups, logs and sysctls back, then slipwayd
	// stops.
	host = prepareNodeHost()
	DeferCleanup(host.restore)
	DeferCleanup(removeAllPods)
	node = startKubelet(ctx, work, daemon.Socket, host)
	DeferCleanup(node.stop)
	DeferCleanup(expectNodeClean)
})

// A failed spec shows what kubelet and slipwayd logged last, and keeps
// both whole logs (with what the CRI lists then) in a directory that
// outlives the suite, for the post-mortem.
var _ = AfterEach(func(ctx context.Context) {
	if !CurrentSpecReport().Failed() {
		return
	}
	kept, err := os.MkdirTemp("", "slipway-kubelet-e2e-failed-")
	if err != nil {
		kept = ""
	}
	for _, f := range []string{node.logPath, daemon.Log.Name()} {
		b, _ := os.ReadFile(f)
		GinkgoWriter.Printf("%s:\n%s\n", f, harness.Tail(string(b), 150))
		if kept != "" {
			_ = os.WriteFile(filepath.Join(kept, filepath.Base(f)), b, 0o600)
		}
	}
	if kept == "" {
		return
	}
	if resp, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err == nil {
		var b strings.Builder
		for _, c := range resp.Containers {
			fmt.Fprintf(&b, "%s %s attempt=%d state=%s pod=%s uid=%s\n", c.Id, c.Metadata.GetName(), c.Metadata.GetAttempt(),
				c.State, c.PodSandboxId, c.Labels[podUIDLabel])
		}
		_ = os.WriteFile(filepath.Join(kept, "containers.txt"), []byte(b.String()), 0o600)
	}
	GinkgoWriter.Printf("whole logs kept in %s\n", kept)
})

// expectNodeClean runs at the suite's end, with kubelet still up: every
// spec has removed its manifests, so once kubelet's garbage collector has
// run, slipwayd holds no pod and the node keeps nothing of them.
func expectNodeClean(ctx context.Context) {
	manifests, err := os.ReadDir(node.manifestDir)
	Expect(err).NotTo(HaveOccurred())
	Expect(manifests).To(BeEmpty(), "manifests left behind")
	Eventually(func(g Gomega) {
		sandboxes, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sandboxes.Items).To(BeEmpty(), "sandboxes")
		containers, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(containers.Containers).To(BeEmpty(), "containers")
	}).WithTimeout(gcTimeout).WithPolling(time.Second).Should(Succeed(), "kubelet's garbage collector removes every pod")
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	var nsMounts []string
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, daemon.State) && strings.Contains(line, " nsfs ") {
			nsMounts = append(nsMounts, line)
		}
	}
	Expect(nsMounts).To(BeEmpty(), "netns and namespace pins")
	Expect(testNet.Allocations()).To(BeEmpty(), "IP allocations")
	rules, err := testNet.Rules()
	Expect(err).NotTo(HaveOccurred())
	Expect(rules).To(BeEmpty(), "iptables rules of the suite network")
	Expect(host.podCgroups()).To(BeEmpty(), "pod cgroups")
}
