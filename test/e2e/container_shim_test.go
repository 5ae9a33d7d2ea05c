package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("A pod's containers", func() {
	It("share one containerd shim, with the other pods of its shim group", func(ctx context.Context) {
		pod := runTestPod(ctx, "shim")
		first := runContainer(ctx, pod, containerConfig("first", "sleep 1000"))
		second := runContainer(ctx, pod, containerConfig("second", "sleep 1000"))
		shim := shimOf(ctx, first)
		Expect(shimOf(ctx, second)).To(Equal(shim))
		// The suite's slipwayd puts up to 8 pods in a group (the
		// default); specs remove their pods, so this group has room.
		group := podVerbose(ctx, pod.ID).ShimGroup
		Expect(group).NotTo(BeEmpty())
		other := runTestPod(ctx, "shim-other")
		third := runContainer(ctx, other, containerConfig("third", "sleep 1000"))
		Expect(podVerbose(ctx, other.ID).ShimGroup).To(Equal(group))
		Expect(shimOf(ctx, third)).To(Equal(shim), "pods of one group share its shim")
	})
})

// shimOf is the pid of the shim that runs container id: the parent of its
// process (the runc shim reaps its containers).
func shimOf(ctx context.Context, id string) int {
	GinkgoHelper()
	pid := containerPid(ctx, id)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	Expect(err).NotTo(HaveOccurred())
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	Expect(err).NotTo(HaveOccurred())
	cmdline, err := os.ReadFile("/proc/" + fields[1] + "/cmdline")
	Expect(err).NotTo(HaveOccurred())
	Expect(string(cmdline)).To(ContainSubstring("containerd-shim-runc-v2"), "container %s's parent is its shim", id)
	return ppid
}
