package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// raceImages: the two busybox tags are distinct images of one repository
// sharing their base layer; the test-image-tags tags are one image.
var raceImages = []string{
	"public.ecr.aws/docker/library/busybox:1-musl",
	"public.ecr.aws/docker/library/busybox:1-uclibc",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:1",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:2",
}

const (
	raceWorkers    = 4
	raceIterations = 15
)

var _ = Describe("Pulling and removing the same images concurrently", func() {
	It("succeeds every call and leaves the image list equal to containerd's records", func(ctx context.Context) {
		removeRaceImages := func(ctx context.Context) {
			for _, ref := range raceImages {
				removeImage(ctx, ref)
			}
		}
		removeRaceImages(ctx)
		DeferCleanup(removeRaceImages)
		// Other tags of these repositories that earlier specs left.
		before := containerdImageRefs(ctx)
		seed := GinkgoRandomSeed()
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			errs   []string
			counts = map[string]int{}
		)
		for w := range raceWorkers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				rnd := rand.New(rand.NewSource(seed + int64(w)))
				for range raceIterations {
					ref := raceImages[rnd.Intn(len(raceImages))]
					op, err := racePullOrRemove(ctx, rnd.Intn(3), ref)
					mu.Lock()
					counts[op]++
					if err != nil {
						errs = append(errs, fmt.Sprintf("%s %s: %v", op, ref, err))
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		GinkgoWriter.Printf("operations: %v\n", counts)
		Expect(errs).To(BeEmpty())
		Eventually(func() string { return criImageRefs(ctx) }).WithTimeout(10*time.Second).WithPolling(100*time.Millisecond).
			Should(Equal(containerdImageRefs(ctx)), "the CRI's images and containerd's records")
		Expect(pullLeases(ctx)).To(BeEmpty(), "pull leases left")

		removeRaceImages(ctx)
		Expect(containerdImageRefs(ctx)).To(Equal(before))
		Expect(criImageRefs(ctx)).To(Equal(before))
	})
})

// racePullOrRemove runs operation n on ref through the CRI: 0 pulls, 1
// removes by tag, 2 removes by image ID when the image is present. It
// returns the operation's name.
func racePullOrRemove(ctx context.Context, n int, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch n {
	case 0:
		resp, err := imageSvc.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err == nil && !strings.HasPrefix(resp.ImageRef, "sha256:") {
			err = fmt.Errorf("image ref %q is not an ID", resp.ImageRef)
		}
		return "pull", err
	case 1:
		_, err := imageSvc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		return "remove-tag", err
	default:
		st, err := imageSvc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			return "status", err
		}
		if st.Image == nil {
			return "remove-id-absent", nil
		}
		_, err = imageSvc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: st.Image.Id}})
		return "remove-id", err
	}
}

// criImageRefs lists the tags and digests of raceImages' repositories the
// CRI reports, each with its image ID, sorted.
func criImageRefs(ctx context.Context) string {
	GinkgoHelper()
	var out []string
	for _, img := range listImages(ctx, "") {
		for _, r := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			if isRaceRepo(r) {
				out = append(out, r+"="+img.Id)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// containerdImageRefs lists the records of raceImages' repositories in the
// CRI's containerd namespace, each with the config digest it resolves to.
func containerdImageRefs(ctx context.Context) string {
	GinkgoHelper()
	c := ctrdClient()
	defer c.Close()
	list, err := c.ListImages(ctx)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, img := range list {
		if !isRaceRepo(img.Name()) {
			continue
		}
		config, err := img.Config(ctx)
		if errdefs.IsNotFound(err) {
			out = append(out, img.Name()+"=missing-content")
			continue
		}
		Expect(err).NotTo(HaveOccurred())
		out = append(out, img.Name()+"="+config.Digest.String())
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func isRaceRepo(ref string) bool {
	for _, r := range raceImages {
		repo, _, _ := strings.Cut(r, ":")
		if strings.HasPrefix(ref, repo+":") || strings.HasPrefix(ref, repo+"@") {
			return true
		}
	}
	return false
}

// pullLeases are the IDs of the containerd leases slipwayd's pulls hold.
func pullLeases(ctx context.Context) []string {
	GinkgoHelper()
	c := ctrdClient()
	defer c.Close()
	list, err := c.LeasesService().List(ctx, `labels."io.slipway.images.pull"`)
	Expect(err).NotTo(HaveOccurred())
	var ids []string
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	return ids
}
