package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nodeFootprint counts what the suite's pods may leave behind on the node.
type nodeFootprint struct {
	NetnsMounts   int
	TmpfsMounts   int
	IPAllocations int
	// IptablesRules mention the suite's network (its comments name it).
	IptablesRules int
	PodDirs       int
}

func footprint() nodeFootprint {
	GinkgoHelper()
	var f nodeFootprint
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if !strings.Contains(line, daemon.State) {
			continue
		}
		if strings.Contains(line, " nsfs ") {
			f.NetnsMounts++
		}
		if strings.Contains(line, " tmpfs ") {
			f.TmpfsMounts++
		}
	}
	f.IPAllocations = len(testNet.Allocations())
	rules, err := testNet.Rules()
	Expect(err).NotTo(HaveOccurred())
	f.IptablesRules = len(rules)
	if entries, err := os.ReadDir(daemon.Root + "/pods"); err == nil {
		f.PodDirs = len(entries)
	}
	return f
}

var _ = Describe("Pod cleanup", func() {
	It("leaves no netns, mount, IP, iptables rule or directory after 50 pods", func(ctx context.Context) {
		// One pod first, so the network's shared chains exist before counting.
		warm := podConfig("leak-warmup")
		warm.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 19999}}
		resp, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: warm})
		Expect(err).NotTo(HaveOccurred())
		removePod(ctx, resp.PodSandboxId)

		before := footprint()
		for i := range 50 {
			config := podConfig("leak")
			config.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: int32(20000 + i)}}
			if i%5 == 0 {
				config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			}
			resp, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
			Expect(err).NotTo(HaveOccurred())
			if i%2 == 0 {
				stopPod(ctx, resp.PodSandboxId)
			}
			removePod(ctx, resp.PodSandboxId)
		}
		Expect(footprint()).To(Equal(before))
		Expect(infraProcesses()).To(BeZero())
		// A thread left in a pod's namespaces would hold them after the pod.
		Eventually(func() []string { return threadsInOtherNamespaces(daemon.Cmd.Process.Pid) }).Should(BeEmpty())
	})
})

// threadsInOtherNamespaces lists the threads of process pid ("TID net")
// whose network, UTS or IPC namespace is not this test process's.
func threadsInOtherNamespaces(pid int) []string {
	GinkgoHelper()
	var odd []string
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	Expect(err).NotTo(HaveOccurred())
	for _, kind := range []string{"net", "uts", "ipc"} {
		own, err := os.Readlink("/proc/self/ns/" + kind)
		Expect(err).NotTo(HaveOccurred())
		for _, t := range tasks {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/%s", pid, t.Name(), kind))
			if err != nil {
				continue // the thread ended
			}
			if ns != own {
				odd = append(odd, t.Name()+" "+kind)
			}
		}
	}
	return odd
}
