package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Pod sysctls", func() {
	It("are set inside the pod's namespaces only", func(ctx context.Context) {
		config := podConfig("sysctl")
		config.Linux.Sysctls = map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "80",
			"kernel.shm_rmid_forced":              "1",
			"fs.mqueue.msg_max":                   "100",
		}
		info := podVerbose(ctx, runPod(ctx, config))
		for path, want := range map[string]string{
			"/proc/sys/net/ipv4/ip_unprivileged_port_start": "80",
			"/proc/sys/kernel/shm_rmid_forced":              "1",
		} {
			out, err := inPod(ctx, info, "cat", path)
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(Equal(want), path)
		}
		host, err := inPod(ctx, podInfo{}, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
		Expect(err).NotTo(HaveOccurred())
		Expect(host).NotTo(Equal("80"), "the node's value is untouched")
	})

	It("refuses a sysctl that is not namespaced or is malformed, naming it", func(ctx context.Context) {
		for _, key := range []string{"kernel.pid_max", "vm.swappiness", "net.ipv4 bad"} {
			config := podConfig("sysctl-bad")
			config.Linux.Sysctls = map[string]string{key: "1"}
			_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
			expectInvalid(err, key)
		}
	})
})
