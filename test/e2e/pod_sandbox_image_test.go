package e2e

import (
	"context"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("The sandbox_image option", func() {
	It("gives every pod a pause process from that image", func(ctx context.Context) {
		daemon.restart(ctx, "--sandbox-image", "registry.k8s.io/pause:3.9")
		DeferCleanup(func(ctx context.Context) { daemon.restart(ctx) })

		id := runPod(ctx, podConfig("pause-image"))
		Expect(podVerbose(ctx, id).Infra).To(BeTrue(), "a pod with per-container PID namespaces gets one too")
		Expect(processesRunning("/pause")).To(Equal(1))
		Expect(imageStatus(ctx, "registry.k8s.io/pause:3.9")).NotTo(BeNil(), "the image was pulled on demand")

		stopPod(ctx, id)
		Expect(processesRunning("/pause")).To(BeZero())
		removePod(ctx, id)
		Expect(podStatusErr(ctx, id)).To(HaveOccurred())
	})
})

// processesRunning counts processes whose command line starts with argv0.
func processesRunning(argv0 string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.HasPrefix(string(b), argv0+"\x00") {
			n++
		}
	}
	return n
}

func podStatusErr(ctx context.Context, id string) error {
	_, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	return err
}
