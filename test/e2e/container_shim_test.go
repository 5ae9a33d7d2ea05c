package e2e

import (
	"context"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("A pod's containers", func() {
	It("share one containerd shim", func(ctx context.Context) {
		before := shims()
		pod := runTestPod(ctx, "shim")
		runContainer(ctx, pod, containerConfig("first", "sleep 1000"))
		runContainer(ctx, pod, containerConfig("second", "sleep 1000"))
		runContainer(ctx, pod, containerConfig("third", "sleep 1000"))
		Expect(shims()).To(Equal(before + 1))
	})
})

// shims counts the runc shims serving the suite's containerd.
func shims() int {
	GinkgoHelper()
	socket := daemon.state + "/containerd/containerd.sock"
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(b), socket) {
			n++
		}
	}
	return n
}
