package kubelet

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Liveness", func() {
	It("restarts a container whose liveness probe fails, counting restarts in kubelet and attempts in the CRI", func(ctx context.Context) {
		// Healthy while /tmp/healthy exists; each new container (a fresh
		// writable layer) makes it again.
		c := shell("flaky", "touch /tmp/healthy; exec sleep 3600")
		c.LivenessProbe = execProbe("cat", "/tmp/healthy")
		p := runStaticPod(newPod("liveness", c))
		uid := p.uid(ctx)
		p.waitReady(ctx)

		for restarts := int32(1); restarts <= 2; restarts++ {
			criExec(ctx, uid, "flaky", "rm", "/tmp/healthy")
			pod := p.waitFor(ctx, "restarted", func(g Gomega, pod *corev1.Pod) {
				s := containerStatus(pod, "flaky")
				g.Expect(s).NotTo(BeNil())
				g.Expect(s.RestartCount).To(Equal(restarts))
				g.Expect(s.State.Running).NotTo(BeNil())
				g.Expect(podCondition(pod, corev1.PodReady)).To(Equal(corev1.ConditionTrue))
			})
			last := containerStatus(pod, "flaky").LastTerminationState.Terminated
			Expect(last).NotTo(BeNil(), "kubelet records the killed container")
			// sleep killed by kubelet's stop: SIGTERM, then SIGKILL after the grace period.
			Expect(last.ExitCode).To(Or(Equal(int32(137)), Equal(int32(143))))

			// The CRI has the new attempt running; kubelet keeps the one
			// before it, exited.
			got := attempts(ctx, uid, "flaky")
			Expect(got).To(HaveKeyWithValue(uint32(restarts), runtimeapi.ContainerState_CONTAINER_RUNNING))
			Expect(got).To(HaveKeyWithValue(uint32(restarts-1), runtimeapi.ContainerState_CONTAINER_EXITED))
		}
	})
})
