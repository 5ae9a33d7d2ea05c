package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podMetricsSample is one scrape of a pod's metrics that the spec follows.
type podMetricsSample struct {
	cpuSeconds, workingSet, rxBytes, txBytes uint64
}

var _ = Describe("Pod metrics", func() {
	It("reports CPU, memory and network metrics that move when a container burns CPU and pings another pod", func(ctx context.Context) {
		parent := "/slipway-e2e-metrics"
		DeferCleanup(removeCgroupTree, parent)
		target := runPod(ctx, podConfig("metrics-target"))
		targetIP := podStatus(ctx, target).Network.Ip
		Expect(targetIP).NotTo(BeEmpty())

		config := podConfig("metrics")
		config.Linux.CgroupParent = parent
		config.LogDirectory = GinkgoT().TempDir()
		pod := testPod{ID: runPod(ctx, config), Config: config}
		// Both loops end by themselves after 60 seconds.
		c := containerConfig("burner", fmt.Sprintf(
			`ping -q -c 600 -i 0.1 %s >/dev/null 2>&1 & end=$(( $(date +%%s) + 60 )); while [ $(date +%%s) -lt $end ]; do :; done`, targetIP))
		c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NET_RAW"}}
		id := runContainer(ctx, pod, c)

		scrape := func() podMetricsSample {
			GinkgoHelper()
			resp, err := runtimeSvc.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
			Expect(err).NotTo(HaveOccurred())
			var s podMetricsSample
			for _, pm := range resp.PodMetrics {
				if pm.PodSandboxId != pod.ID {
					continue
				}
				for _, m := range pm.Metrics {
					switch m.Name {
					case "container_network_receive_bytes_total":
						s.rxBytes += m.Value.GetValue()
					case "container_network_transmit_bytes_total":
						s.txBytes += m.Value.GetValue()
					}
				}
				for _, cm := range pm.ContainerMetrics {
					if cm.ContainerId != id {
						continue
					}
					for _, m := range cm.Metrics {
						switch m.Name {
						case "container_cpu_usage_seconds_total":
							s.cpuSeconds = m.Value.GetValue()
						case "container_memory_working_set_bytes":
							s.workingSet = m.Value.GetValue()
						}
					}
				}
			}
			return s
		}

		first := scrape()
		Expect(first.workingSet).To(BeNumerically(">", 0))
		Eventually(func(g Gomega) {
			now := scrape()
			g.Expect(now.cpuSeconds).To(BeNumerically(">", first.cpuSeconds), "CPU seconds")
			g.Expect(now.txBytes).To(BeNumerically(">", first.txBytes), "transmitted bytes")
			g.Expect(now.rxBytes).To(BeNumerically(">", first.rxBytes), "received bytes")
			g.Expect(now.workingSet).To(BeNumerically(">", 0))
		}).WithTimeout(50 * time.Second).WithPolling(time.Second).Should(Succeed())

	})
})
