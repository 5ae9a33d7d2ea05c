// Package e2e runs slipway's end-to-end suites: a real slipwayd with its
// embedded containerd, pulling from the project's test registry on
// 127.0.0.1, driven through the CRI and crictl. Run as root.
package e2e

import (
	"context"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	registry "github.com/slipway-dev/slipway/hack/testimages/testregistry"
	"golang.org/x/sys/unix"
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

// privateUser and privatePassword guard the registry's private/ repositories.
const (
	privateUser     = "slipway"
	privatePassword = "s3cret"
)

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

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
	DeferCleanup(unmountUnder, work)

	testRegistry, err = registry.Start(ctx, registry.Options{
		Addr: "127.0.0.1:0",
		Auth: &registry.Credentials{Username: privateUser, Password: privatePassword},
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(testRegistry.Close)
	hostsDir := work + "/certs.d"
	Expect(registry.WriteHostsDir(hostsDir, testRegistry.Addr())).To(Succeed())
	suiteHostsDir = hostsDir

	cniConfDir := writeTestNetwork(work)
	DeferCleanup(removeTestNetwork)
	suiteCDIDir = work + "/cdi"
	Expect(os.MkdirAll(suiteCDIDir, 0o755)).To(Succeed())
	daemon = startSlipwayd(ctx, work, hostsDir, cniConfDir, "--cdi-spec-dirs", suiteCDIDir)
	DeferCleanup(daemon.stop)
	runtimeSvc = runtimeapi.NewRuntimeServiceClient(daemon.conn)
	imageSvc = runtimeapi.NewImageServiceClient(daemon.conn)
})
