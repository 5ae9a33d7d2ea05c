package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Registry build cache", func() {
	It("exports cache from one builder and imports it into another with a clean state dir", func(ctx SpecContext) {
		ref := testRegistry.Addr() + "/slipway-e2e/cache:multistage"
		dir := corpusContext("multistage")
		slipwayBuild(ctx, builderAddr(), "--progress=plain", "--target", "test",
			"--cache-to", "type=registry,ref="+ref+",mode=max", dir).succeeded()

		other := startBuilderOnly(ctx)
		r := slipwayBuild(ctx, other.addr(), "--progress=rawjson", "--target", "test",
			"--cache-from", "type=registry,ref="+ref, "-t", "slipway-e2e/from-cache:1", dir).succeeded()
		steps := r.steps()
		Expect(steps).NotTo(BeEmpty())
		for _, s := range steps {
			if !isFrom(s) {
				Expect(s.cached).To(BeTrue(), "step %q should come from the imported cache", s.name)
			}
		}
	})

	It("imports inline cache from a pushed image", func(ctx SpecContext) {
		ref := testRegistry.Addr() + "/slipway-e2e/inline:1"
		dir := corpusContext("edit")
		slipwayBuild(ctx, builderAddr(), "--progress=plain", "--cache-to", "type=inline",
			"--output", "type=registry,name="+ref, dir).succeeded()

		other := startBuilderOnly(ctx)
		r := slipwayBuild(ctx, other.addr(), "--progress=rawjson", "--cache-from", ref, dir).succeeded()
		for _, s := range r.steps() {
			if isFrom(s) {
				continue
			}
			Expect(s.cached).To(BeTrue(), "step %q should come from the inline cache", s.name)
		}
	})
})
