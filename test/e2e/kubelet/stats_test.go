package kubelet

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// positive is a reported, non-zero counter.
func positive(v *uint64) bool { return v != nil && *v > 0 }

var _ = Describe("/stats/summary", func() {
	It("reports the node's image filesystem from the CRI and the pod's CPU, memory and storage", func(ctx context.Context) {
		p := runStaticPod(newPod("stats", shell("worker", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")))
		p.waitReady(ctx)
		uid := string(p.uid(ctx))

		Eventually(func(g Gomega) {
			s, err := node.summary(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Node.NodeName).To(Equal(nodeName))
			g.Expect(s.Node.Runtime).NotTo(BeNil(), "node.runtime")
			imageFs := s.Node.Runtime.ImageFs
			g.Expect(imageFs).NotTo(BeNil(), "node.runtime.imageFs")
			g.Expect(positive(imageFs.CapacityBytes)).To(BeTrue(), "imageFs.capacityBytes")
			g.Expect(positive(imageFs.UsedBytes)).To(BeTrue(), "imageFs.usedBytes (the pulled images)")
			g.Expect(positive(imageFs.AvailableBytes)).To(BeTrue(), "imageFs.availableBytes")

			var pod *podStats
			for i := range s.Pods {
				if s.Pods[i].PodRef.UID == uid {
					pod = &s.Pods[i]
				}
			}
			g.Expect(pod).NotTo(BeNil(), "no stats for pod %s", uid)
			g.Expect(pod.PodRef.Name).To(Equal(p.name()))
			g.Expect(pod.PodRef.Namespace).To(Equal(podNamespace))
			g.Expect(pod.CPU).NotTo(BeNil(), "pod cpu")
			g.Expect(positive(pod.CPU.UsageCoreNanoSeconds)).To(BeTrue(), "pod cpu.usageCoreNanoSeconds")
			g.Expect(pod.Memory).NotTo(BeNil(), "pod memory")
			g.Expect(positive(pod.Memory.WorkingSetBytes)).To(BeTrue(), "pod memory.workingSetBytes")
			g.Expect(pod.EphemeralStorage).NotTo(BeNil(), "pod ephemeral-storage")
			g.Expect(positive(pod.EphemeralStorage.UsedBytes)).To(BeTrue(), "pod ephemeral-storage.usedBytes")

			g.Expect(pod.Containers).To(HaveLen(1))
			c := pod.Containers[0]
			g.Expect(c.Name).To(Equal("worker"))
			g.Expect(c.CPU).NotTo(BeNil(), "container cpu")
			g.Expect(positive(c.CPU.UsageCoreNanoSeconds)).To(BeTrue(), "container cpu.usageCoreNanoSeconds")
			g.Expect(c.Memory).NotTo(BeNil(), "container memory")
			g.Expect(positive(c.Memory.WorkingSetBytes)).To(BeTrue(), "container memory.workingSetBytes")
			g.Expect(c.Logs).NotTo(BeNil(), "container logs")
			g.Expect(positive(c.Logs.UsedBytes)).To(BeTrue(), "container logs.usedBytes")
			g.Expect(c.Rootfs).NotTo(BeNil(), "container rootfs")
			g.Expect(c.Rootfs.UsedBytes).NotTo(BeNil(), "container rootfs.usedBytes")
		}).WithTimeout(podTimeout).WithPolling(time.Second).Should(Succeed())
	})
})
