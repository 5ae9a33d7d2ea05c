package e2e

import (
	"context"
	"encoding/json"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const busyboxImage = "registry.k8s.io/e2e-test-images/busybox:1.29-2"

var _ = Describe("Pulling images through the registry mirror", Ordered, func() {
	It("pulls a tagged image and serves it by tag, ID and digest", func(ctx context.Context) {
		removeImage(ctx, busyboxImage)
		id := pullImage(ctx, busyboxImage, nil)
		Expect(id).To(HavePrefix("sha256:"))
		DeferCleanup(removeImage, context.Background(), id)

		img := imageStatus(ctx, busyboxImage)
		Expect(img).NotTo(BeNil())
		Expect(img.Id).To(Equal(id))
		Expect(img.RepoTags).To(Equal([]string{busyboxImage}))
		Expect(img.RepoDigests).To(HaveLen(1))
		Expect(img.RepoDigests[0]).To(HavePrefix("registry.k8s.io/e2e-test-images/busybox@sha256:"))
		Expect(img.Size).To(BeNumerically(">", 0))

		Expect(imageStatus(ctx, id)).To(Equal(img), "status by ID")
		Expect(imageStatus(ctx, strings.TrimPrefix(id, "sha256:"))).To(Equal(img), "status by bare ID")
		Expect(imageStatus(ctx, img.RepoDigests[0])).To(Equal(img), "status by digest")

		Expect(listImages(ctx, "")).To(ContainElement(HaveField("Id", id)))
		filtered := listImages(ctx, busyboxImage)
		Expect(filtered).To(HaveLen(1))
		Expect(filtered[0].Id).To(Equal(id))
	})

	It("removes an image by tag with all its references", func(ctx context.Context) {
		id := pullImage(ctx, busyboxImage, nil)
		img := imageStatus(ctx, busyboxImage)
		removeImage(ctx, busyboxImage)
		Expect(imageStatus(ctx, busyboxImage)).To(BeNil())
		Expect(imageStatus(ctx, id)).To(BeNil())
		Expect(imageStatus(ctx, img.RepoDigests[0])).To(BeNil())
		Expect(listImages(ctx, "")).NotTo(ContainElement(HaveField("Id", id)))
		removeImage(ctx, busyboxImage) // removing an absent image succeeds
	})

	It("groups the tags of one image under one ID", func(ctx context.Context) {
		tags := []string{
			"gcr.io/k8s-staging-cri-tools/test-image-tags:1",
			"gcr.io/k8s-staging-cri-tools/test-image-tags:2",
			"gcr.io/k8s-staging-cri-tools/test-image-tags:3",
		}
		var ids []string
		for _, t := range tags {
			ids = append(ids, pullImage(ctx, t, nil))
		}
		Expect(ids[1]).To(Equal(ids[0]))
		Expect(ids[2]).To(Equal(ids[0]))
		img := imageStatus(ctx, ids[0])
		Expect(img.RepoTags).To(ConsistOf(tags))

		removeImage(ctx, ids[0])
		for _, t := range tags {
			Expect(imageStatus(ctx, t)).To(BeNil(), t)
		}
	})

	It("reports the image USER as uid or username", func(ctx context.Context) {
		for image, want := range map[string]struct {
			uid      int64
			username string
		}{
			"gcr.io/k8s-staging-cri-tools/test-image-user-uid":            {uid: 1002},
			"gcr.io/k8s-staging-cri-tools/test-image-user-username":       {username: "www-data"},
			"gcr.io/k8s-staging-cri-tools/test-image-user-uid-group":      {uid: 1003},
			"gcr.io/k8s-staging-cri-tools/test-image-user-username-group": {username: "www-data"},
		} {
			pullImage(ctx, image, nil)
			img := imageStatus(ctx, image)
			Expect(img.GetUid().GetValue()).To(Equal(want.uid), image)
			Expect(img.Username).To(Equal(want.username), image)
			removeImage(ctx, image)
		}
	})

	It("gives verbose image info as JSON", func(ctx context.Context) {
		id := pullImage(ctx, busyboxImage, nil)
		DeferCleanup(removeImage, context.Background(), id)
		resp, err := imageSvc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{
			Image: &runtimeapi.ImageSpec{Image: busyboxImage}, Verbose: true,
		})
		Expect(err).NotTo(HaveOccurred())
		var info struct {
			ID        string `json:"id"`
			ImageSpec struct {
				Architecture string `json:"architecture"`
				Config       struct {
					Cmd []string `json:"Cmd"`
				} `json:"config"`
			} `json:"imageSpec"`
		}
		Expect(json.Unmarshal([]byte(resp.Info["info"]), &info)).To(Succeed())
		Expect(info.ID).To(Equal(id))
		Expect(info.ImageSpec.Architecture).To(Equal("amd64"))
	})

	It("reports image filesystem usage that a pull increases", func(ctx context.Context) {
		// test-image-3 has a layer of its own, shared with no other image.
		const image = "gcr.io/k8s-staging-cri-tools/test-image-3:latest"
		removeImage(ctx, image)
		before := imageFsUsed(ctx)
		id := pullImage(ctx, image, nil)
		DeferCleanup(removeImage, context.Background(), id)
		resp, err := imageSvc.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
		Expect(err).NotTo(HaveOccurred())
		fs := resp.ImageFilesystems[0]
		Expect(fs.FsId.Mountpoint).To(BeADirectory())
		Expect(fs.UsedBytes.Value).To(BeNumerically(">", before))
		Expect(fs.InodesUsed.Value).To(BeNumerically(">", 0))
	})
})

func pullImage(ctx context.Context, ref string, auth *runtimeapi.AuthConfig) string {
	GinkgoHelper()
	resp, err := imageSvc.PullImage(ctx, &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth,
	})
	Expect(err).NotTo(HaveOccurred(), "pulling %s", ref)
	return resp.ImageRef
}

// imageStatus is the image ref names, or nil when the node has none.
func imageStatus(ctx context.Context, ref string) *runtimeapi.Image {
	GinkgoHelper()
	resp, err := imageSvc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	Expect(err).NotTo(HaveOccurred(), "status of %s", ref)
	return resp.Image
}

func listImages(ctx context.Context, filter string) []*runtimeapi.Image {
	GinkgoHelper()
	req := &runtimeapi.ListImagesRequest{}
	if filter != "" {
		req.Filter = &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: filter}}
	}
	resp, err := imageSvc.ListImages(ctx, req)
	Expect(err).NotTo(HaveOccurred())
	return resp.Images
}

func removeImage(ctx context.Context, ref string) {
	GinkgoHelper()
	_, err := imageSvc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	Expect(err).NotTo(HaveOccurred(), "removing %s", ref)
}

func imageFsUsed(ctx context.Context) uint64 {
	GinkgoHelper()
	resp, err := imageSvc.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.ImageFilesystems).To(HaveLen(1))
	return resp.ImageFilesystems[0].UsedBytes.Value
}
