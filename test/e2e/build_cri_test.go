package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criImage is the CRI's view of the image ref, or nil when the CRI does
// not know it.
func criImage(ctx context.Context, ref string) *runtimeapi.Image {
	resp, err := imageSvc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	Expect(err).NotTo(HaveOccurred())
	return resp.GetImage()
}

// listedTags are every RepoTag in the CRI's ListImages.
func listedTags(ctx context.Context) []string {
	resp, err := imageSvc.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	Expect(err).NotTo(HaveOccurred())
	var tags []string
	for _, img := range resp.GetImages() {
		tags = append(tags, img.GetRepoTags()...)
	}
	return tags
}

var _ = Describe("Built images in the CRI", func() {
	It("lists an image as soon as its build finishes, under every tag, unpinned", func(ctx SpecContext) {
		slipwayBuild(ctx, builderAddr(), "--progress=quiet", "-t", "slipway-e2e/cri:a", "-t", "slipway-e2e/cri:b",
			corpusContext("heredoc")).succeeded()
		// The CRI follows containerd's image events: allow for delivery, not polling.
		Eventually(func() []string { return listedTags(ctx) }).WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).
			Should(ContainElements("docker.io/slipway-e2e/cri:a", "docker.io/slipway-e2e/cri:b"))
		img := criImage(ctx, "slipway-e2e/cri:a")
		Expect(img).NotTo(BeNil())
		Expect(img.GetPinned()).To(BeFalse())
		Expect(img.GetSize()).To(BeNumerically(">", 0))
	})

	It("pins an image built with --keep and unpins it when rebuilt without", func(ctx SpecContext) {
		dir := corpusContext("heredoc")
		slipwayBuild(ctx, builderAddr(), "--progress=quiet", "--keep", "-t", "slipway-e2e/kept:1", dir).succeeded()
		Eventually(func() bool { img := criImage(ctx, "slipway-e2e/kept:1"); return img != nil && img.GetPinned() }).
			WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())

		slipwayBuild(ctx, builderAddr(), "--progress=quiet", "-t", "slipway-e2e/kept:1", dir).succeeded()
		Eventually(func() bool { return criImage(ctx, "slipway-e2e/kept:1").GetPinned() }).
			WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(BeFalse())
	})

	It("lists an image built by buildctl with a short name under its normalized name", func(ctx SpecContext) {
		dir := corpusContext("heredoc")
		buildctl(ctx, builderAddr(), "build", "--progress=plain", "--frontend=dockerfile.v0",
			"--local", "context="+dir, "--local", "dockerfile="+dir,
			"--output", "type=image,name=slipway-e2e-short:1,keep=true").succeeded()
		Eventually(func() *runtimeapi.Image { return criImage(ctx, "docker.io/library/slipway-e2e-short:1") }).
			WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).ShouldNot(BeNil())
		Expect(criImage(ctx, "slipway-e2e-short:1").GetPinned()).To(BeTrue(), "keep=true works from buildctl too")
	})

	It("rejects an invalid image name with an error naming it", func(ctx SpecContext) {
		r := buildctl(ctx, builderAddr(), "build", "--progress=plain", "--frontend=dockerfile.v0",
			"--local", "context="+corpusContext("heredoc"), "--local", "dockerfile="+corpusContext("heredoc"),
			"--output", "type=image,name=Not_A_Valid/Name")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring(`image name "Not_A_Valid/Name"`))
	})
})
