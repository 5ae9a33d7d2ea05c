package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Build cache", func() {
	It("hits the cache for every step of a no-change rebuild", func(ctx SpecContext) {
		dir := corpusContext("edit")
		first := slipwayBuild(ctx, builderAddr(), "--progress=rawjson", "-t", "slipway-e2e/edit:nochange", dir).succeeded()
		Expect(first.steps()).To(HaveLen(6), "FROM, three RUNs and two COPYs")
		again := slipwayBuild(ctx, builderAddr(), "--progress=rawjson", "-t", "slipway-e2e/edit:nochange", dir).succeeded()
		steps := again.steps()
		Expect(steps).To(HaveLen(6))
		for _, s := range steps {
			if isFrom(s) {
				continue // only resolved: nothing after it needs its layers
			}
			Expect(s.cached).To(BeTrue(), "step %q should be cached", s.name)
		}
		GinkgoWriter.Printf("cold %v, no-change rebuild %v\n", first.elapsed, again.elapsed)
	})

	It("rebuilds only the steps after an edited file", func(ctx SpecContext) {
		dir := corpusContext("edit")
		slipwayBuild(ctx, builderAddr(), "--progress=rawjson", "-t", "slipway-e2e/edit:edited", dir).succeeded()
		Expect(os.WriteFile(filepath.Join(dir, "edited.txt"), []byte("version-2\n"), 0o644)).To(Succeed())
		r := slipwayBuild(ctx, builderAddr(), "--progress=rawjson", "-t", "slipway-e2e/edit:edited", dir).succeeded()
		cached := map[string]bool{}
		for _, s := range r.steps() {
			if !isFrom(s) {
				cached[s.name] = s.cached
			}
		}
		Expect(cached).To(Equal(map[string]bool{
			"[2/6] RUN echo first > /first":           true,
			"[3/6] COPY stable.txt /stable.txt":       true,
			"[4/6] RUN echo second > /second":         true,
			"[5/6] COPY edited.txt /edited.txt":       false,
			"[6/6] RUN cat /edited.txt > /after-edit": false,
		}))
		Expect(inspectImage(ctx, "docker.io/slipway-e2e/edit:edited").text("/after-edit")).To(Equal("version-2"))
	})

	It("keeps a cache mount's content between builds", func(ctx SpecContext) {
		runs := func() int {
			// A new CACHEBUST reruns the step. (--no-cache would empty
			// cache mounts too, as BuildKit does since 2019.)
			slipwayBuild(ctx, builderAddr(), "--progress=quiet", "--build-arg", "CACHEBUST="+time.Now().String(),
				"--secret", "id=token,src="+secretFile(),
				"-t", "slipway-e2e/mounts:cache", corpusContext("mounts")).succeeded()
			n, err := strconv.Atoi(inspectImage(ctx, "docker.io/slipway-e2e/mounts:cache").text("/cache-runs"))
			Expect(err).NotTo(HaveOccurred())
			return n
		}
		first := runs()
		Expect(runs()).To(Equal(first + 1))
	})
})

// isFrom reports whether s is a FROM step. In a build whose later steps
// are all cached, BuildKit only resolves the base image and never marks
// its vertex cached (buildkitd and docker buildx show the same).
func isFrom(s buildStep) bool {
	_, rest, _ := strings.Cut(s.name, "] ")
	return strings.HasPrefix(rest, "FROM ")
}
