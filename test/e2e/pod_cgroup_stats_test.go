package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/runtime/oomscore"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroupV1Memory is where the memory controller is mounted on this
// (cgroup v1) machine.
const cgroupV1Memory = "/sys/fs/cgroup/memory"

var _ = Describe("Pod cgroups and stats", func() {
	It("runs the infra process under the cgroup parent, with a clamped oom_score_adj, and reports stats", func(ctx context.Context) {
		if _, err := os.Stat(filepath.Join(cgroupV1Memory, "memory.usage_in_bytes")); err != nil {
			Skip("this spec reads cgroup v1 files")
		}
		parent := "/slipway-e2e-pods"
		DeferCleanup(removeCgroupTree, parent)
		config := podConfig("cgroup")
		config.Linux.CgroupParent = parent
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		id := runPod(ctx, config)

		tasks, err := os.ReadFile(filepath.Join(cgroupV1Memory, parent, id, "cgroup.procs"))
		Expect(err).NotTo(HaveOccurred())
		pids := strings.Fields(string(tasks))
		Expect(pids).To(HaveLen(1), "the infra process is in the pod's cgroup")
		adj, err := os.ReadFile("/proc/" + pids[0] + "/oom_score_adj")
		Expect(err).NotTo(HaveOccurred())
		Expect(strconv.Atoi(strings.TrimSpace(string(adj)))).To(Equal(oomscore.Clamp(-998)))

		resp, err := runtimeSvc.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
		Expect(err).NotTo(HaveOccurred())
		stats := resp.Stats
		Expect(stats.Attributes.Id).To(Equal(id))
		Expect(stats.Linux.Memory.UsageBytes.Value).To(BeNumerically(">", 0))
		Expect(stats.Linux.Cpu.UsageCoreNanoSeconds).NotTo(BeNil())
		Expect(stats.Linux.Network.DefaultInterface.Name).To(Equal("eth0"))

		list, err := runtimeSvc.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{
			Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"test": "cgroup"}},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(list.Stats).To(HaveLen(1))
		Expect(list.Stats[0].Attributes.Id).To(Equal(id))
	})
})

// removeCgroupTree removes the test's cgroup parent from every v1 hierarchy
// (runc removes the pod's own cgroups).
func removeCgroupTree(parent string) {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		_ = os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), parent))
	}
}
