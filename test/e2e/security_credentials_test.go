package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Registry credentials", func() {
	It("appear in neither slipwayd's nor containerd's log at debug level", func(ctx context.Context) {
		// slipwayd already logs at debug; its containerd does too until the
		// next restart.
		config := filepath.Join(GinkgoT().TempDir(), "config.toml")
		Expect(os.WriteFile(config, []byte("[containerd]\nlog_level = \"debug\"\n"), 0o600)).To(Succeed())
		daemon.restart(ctx, "--config", config)
		DeferCleanup(func(ctx context.Context) { daemon.restart(ctx) })

		const wrongPassword = "wr0ng-pa55word-e2e"
		basic := func(user, password string) string {
			return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		}
		ref := testRegistry.Addr() + "/private/busybox:1.0"
		mirrored := "registry.k8s.io/private/busybox:1.0"
		removeImage(ctx, ref)
		removeImage(ctx, mirrored)

		pullImage(ctx, ref, &runtimeapi.AuthConfig{Username: privateUser, Password: privatePassword})
		removeImage(ctx, ref)
		pullImage(ctx, ref, &runtimeapi.AuthConfig{Auth: basic(privateUser, privatePassword), ServerAddress: testRegistry.Addr()})
		removeImage(ctx, ref)
		pullImage(ctx, mirrored, &runtimeapi.AuthConfig{Username: privateUser, Password: privatePassword, ServerAddress: "https://registry.k8s.io"})
		removeImage(ctx, mirrored)
		_, err := imageSvc.PullImage(ctx, &runtimeapi.PullImageRequest{
			Image: &runtimeapi.ImageSpec{Image: ref}, Auth: &runtimeapi.AuthConfig{Username: privateUser, Password: wrongPassword},
		})
		Expect(status.Code(err)).To(Equal(codes.Unauthenticated), "%v", err)

		logs := map[string]string{
			"slipwayd":   daemon.Log.Name(),
			"containerd": filepath.Join(daemon.State, "containerd", "containerd.log"),
		}
		for name, path := range logs {
			b, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			text := string(b)
			Expect(strings.Contains(text, "level=debug")).To(BeTrue(), "the %s log is at debug level", name)
			for _, secret := range []string{
				privatePassword, basic(privateUser, privatePassword),
				wrongPassword, basic(privateUser, wrongPassword),
			} {
				Expect(strings.Count(text, secret)).To(BeZero(), "times the %s log %s holds %q", name, path, secret)
			}
		}
		b, err := os.ReadFile(logs["slipwayd"])
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Contains(string(b), "pulling image")).To(BeTrue(), "slipwayd logged the pulls")
	})
})
