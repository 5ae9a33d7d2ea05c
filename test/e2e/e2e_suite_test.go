// Package e2e runs slipway's end-to-end suites: a real slipwayd with its
// embedded containerd, pulling from the project's test registry on
// 127.0.0.1, driven through the CRI and crictl. Run as root.
package e2e

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	registry "github.com/slipway-dev/slipway/hack/testimages/testregistry"
	"github.com/slipway-dev/slipway/test/e2e/harness"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Shared by every spec; set up once in BeforeSuite.
var (
	daemon       *slipwayd
	testRegistry *registry.Server
	runtimeSvc   runtimeapi.RuntimeServiceClient
	imageSvc     runtimeapi.ImageServiceClient
	// suiteHostsDir mirrors the registries to testRegistry.
	suiteHostsDir string
	// suiteCDIDir is the daemon's CDI spec directory (watched: specs
	// written there are seen without a restart).
	suiteCDIDir string
)

// testNet is the suite's pod network, apart from the node's and from the
// kubelet suite's.
var testNet = &harness.Network{Name: "slipway-e2e", Bridge: "swe2e0", Subnet: "10.252.0.0/24"}

// privateUser and privatePassword guard the registry's private/ repositories.
const (
	privateUser     = "slipway"
	privatePassword = "s3cret"
)

func TestE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("e2e suites need root: they run containerd")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "slipway e2e")
}

var _ = BeforeSuite(func(ctx context.Context) {
	work, err := os.MkdirTemp("", "slipway-e2e-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, work)
	// runc resolves a container's rootfs as the container's user, which
	// in a pod with a user namespace is not the node's root: the state dir
	// must be searchable by others, as /run is.
	Expect(os.Chmod(work, 0o711)).To(Succeed())
	// Runs before RemoveAll: whatever a failed spec left mounted.
	DeferCleanup(harness.UnmountUnder, work)

	testRegistry, err = registry.Start(ctx, registry.Options{
		Addr: "127.0.0.1:0",
		Auth: &registry.Credentials{Username: privateUser, Password: privatePassword},
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(testRegistry.Close)
	hostsDir := work + "/certs.d"
	Expect(registry.WriteHostsDir(hostsDir, testRegistry.Addr())).To(Succeed())
	suiteHostsDir = hostsDir

	Expect(testNet.Write(work)).To(Succeed())
	DeferCleanup(testNet.Remove)
	suiteCDIDir = work + "/cdi"
	Expect(os.MkdirAll(suiteCDIDir, 0o755)).To(Succeed())
	daemon = startSlipwayd(ctx, work, hostsDir, testNet.ConfDir, "--cdi-spec-dirs", suiteCDIDir)
	DeferCleanup(daemon.stop)
	runtimeSvc = runtimeapi.NewRuntimeServiceClient(daemon.Conn)
	imageSvc = runtimeapi.NewImageServiceClient(daemon.Conn)
})
