package e2e

import (
	"context"
	"encoding/json"
	"os/exec"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("crictl against slipwayd", func() {
	crictl := func(ctx context.Context, args ...string) string {
		GinkgoHelper()
		args = append([]string{"--runtime-endpoint", "unix://" + daemon.socket, "--image-endpoint", "unix://" + daemon.socket}, args...)
		out, err := exec.CommandContext(ctx, "crictl", args...).Output()
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		Expect(err).NotTo(HaveOccurred(), "crictl %v: %s", args, stderr)
		return string(out)
	}

	BeforeEach(func() {
		if _, err := exec.LookPath("crictl"); err != nil {
			Fail("crictl is not installed: run make deps")
		}
	})

	It("reports version and info", func(ctx context.Context) {
		Expect(crictl(ctx, "version")).To(ContainSubstring("RuntimeName:  slipway"))
		var info struct {
			Status struct {
				Conditions []struct {
					Type   string `json:"type"`
					Status bool   `json:"status"`
				} `json:"conditions"`
			} `json:"status"`
			Config map[string]any `json:"config"`
		}
		Expect(json.Unmarshal([]byte(crictl(ctx, "info")), &info)).To(Succeed())
		Expect(info.Status.Conditions).To(ContainElement(And(HaveField("Type", "RuntimeReady"), HaveField("Status", true))))
		Expect(info.Config).To(HaveKey("cri"))
	})

	It("pulls, lists, inspects and removes images, and shows image fs info", func(ctx context.Context) {
		image := "gcr.io/k8s-staging-cri-tools/test-image-tag:test"
		Expect(crictl(ctx, "pull", image)).To(ContainSubstring("Image is up to date for sha256:"))
		Expect(crictl(ctx, "images")).To(MatchRegexp(`gcr.io/k8s-staging-cri-tools/test-image-tag\s+test\s+[0-9a-f]{13}`))

		var inspect struct {
			Status struct {
				ID       string   `json:"id"`
				RepoTags []string `json:"repoTags"`
			} `json:"status"`
			Info map[string]any `json:"info"`
		}
		Expect(json.Unmarshal([]byte(crictl(ctx, "inspecti", image)), &inspect)).To(Succeed())
		Expect(inspect.Status.RepoTags).To(Equal([]string{image}))
		Expect(inspect.Info).To(HaveKey("imageSpec"))

		Expect(crictl(ctx, "imagefsinfo")).To(ContainSubstring("usedBytes"))
		Expect(crictl(ctx, "rmi", image)).To(ContainSubstring("Deleted: " + image))
		Expect(crictl(ctx, "images", "-q")).NotTo(ContainSubstring(inspect.Status.ID))
	})
})
