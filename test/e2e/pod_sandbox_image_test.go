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

// processesRunning counts the processes whose command line starts with
// argv0 and that belong to the suite: their root directory lies in the
// suite's state dir (slipway's synthetic infra rootfs) or their parent is a
// shim of the suite's containerd. Other runtimes on the machine may run
// the same programs.
func processesRunning(argv0 string) int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(b), argv0+"\x00") {
			continue
		}
		if root, err := os.Readlink("/proc/" + e.Name() + "/root"); err == nil && strings.HasPrefix(root, daemon.State+"/") {
			n++
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The parent pid is the second field after the ")" closing comm.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if parent, err := os.ReadFile("/proc/" + fields[1] + "/cmdline"); err == nil && strings.Contains(string(parent), daemon.State) {
			n++
		}
	}
	return n
}

func podStatusErr(ctx context.Context, id string) error {
	_, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	return err
}
