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
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Shared by every spec; set up once in BeforeSuite.
var (
	daemon       *slipwayd
	testRegistry *registry.Server
	runtimeSvc   runtimeapi.RuntimeServiceClient
	imageSvc     runtimeapi.ImageServiceClient
)

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

	testRegistry, err = registry.Start(ctx, registry.Options{
		Addr: "127.0.0.1:0",
		Auth: &registry.Credentials{Username: privateUser, Password: privatePassword},
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(testRegistry.Close)
	hostsDir := work + "/certs.d"
	Expect(registry.WriteHostsDir(hostsDir, testRegistry.Addr())).To(Succeed())

	cniConfDir := writeTestNetwork(work)
	DeferCleanup(removeTestNetwork)
	daemon = startSlipwayd(ctx, work, hostsDir, cniConfDir)
	DeferCleanup(daemon.stop)
	runtimeSvc = runtimeapi.NewRuntimeServiceClient(daemon.conn)
	imageSvc = runtimeapi.NewImageServiceClient(daemon.conn)
})
