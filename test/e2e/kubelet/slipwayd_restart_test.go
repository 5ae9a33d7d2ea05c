package kubelet

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// lastTick is the highest "tick N" in a CRI log file (0 for none).
func lastTick(path string) int {
	lines, err := criLog(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range lines {
		if v, err := strconv.Atoi(strings.TrimPrefix(l, "stdout tick ")); err == nil && v > n {
			n = v
		}
	}
	return n
}

var _ = Describe("A slipwayd restart under kubelet", func() {
	It("leaves running pods to kubelet: statuses, probes, logs, streaming, host ports and teardown go on", func(ctx context.Context) {
		probed := runStaticPod(probedPod())
		flaky := shell("flaky", "touch /tmp/healthy; exec sleep 3600")
		flaky.LivenessProbe = execProbe("cat", "/tmp/healthy")
		ticker := shell("ticker", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
		web := corev1.Container{Name: "web", Image: nginxImage,
			Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: hostPort + 2, Protocol: corev1.ProtocolTCP}}}
		web.ReadinessProbe = tcpProbe(80)
		other := runStaticPod(newPod("restart", flaky, ticker, web))
		openProbeGates(ctx, probed)
		pods := []*staticPod{probed, other}
		ids := map[string]string{}
		for _, p := range pods {
			for _, s := range p.waitReady(ctx).Status.ContainerStatuses {
				ids[p.name()+"/"+s.Name] = s.ContainerID
			}
		}
		tickLog := filepath.Join(podLogDir(ctx, other), "ticker", "0.log")
		Eventually(func() int { return lastTick(tickLog) }).WithTimeout(podTimeout).WithPolling(poll).Should(BeNumerically(">", 0))

		daemon.restart(ctx)
		tickAtRestart := lastTick(tickLog)

		By("kubelet keeps the same containers, Ready, without restarts")
		for _, p := range pods {
			pod := p.waitReady(ctx)
			for _, s := range pod.Status.ContainerStatuses {
				Expect(s.ContainerID).To(Equal(ids[p.name()+"/"+s.Name]), "container %s", s.Name)
				Expect(s.RestartCount).To(BeZero(), "container %s", s.Name)
			}
		}

		By("readiness probes run against the restarted slipwayd")
		probedUID := probed.uid(ctx)
		criExec(ctx, probedUID, "exec", "rm", "/tmp/ready")
		criExec(ctx, probedUID, "http", "rm", "/www/ready")
		probed.waitFor(ctx, "not ready", func(g Gomega, pod *corev1.Pod) {
			g.Expect(containerStatus(pod, "exec").Ready).To(BeFalse())
			g.Expect(containerStatus(pod, "http").Ready).To(BeFalse())
		})
		openProbeGates(ctx, probed)
		probed.waitReady(ctx)

		By("a failing liveness probe restarts the container")
		otherUID := other.uid(ctx)
		criExec(ctx, otherUID, "flaky", "rm", "/tmp/healthy")
		other.waitFor(ctx, "flaky restarted", func(g Gomega, pod *corev1.Pod) {
			s := containerStatus(pod, "flaky")
			g.Expect(s.RestartCount).To(Equal(int32(1)))
			g.Expect(s.State.Running).NotTo(BeNil())
		})
		Expect(attempts(ctx, otherUID, "flaky")).To(HaveKeyWithValue(uint32(1), runtimeapi.ContainerState_CONTAINER_RUNNING))

		By("the container's log goes on in the same file, and kubelet serves it")
		Eventually(func() int { return lastTick(tickLog) }).WithTimeout(podTimeout).WithPolling(poll).Should(BeNumerically(">", tickAtRestart+5))
		Expect(node.containerLogs(ctx, other, "ticker", "")).To(ContainSubstring(fmt.Sprintf("tick %d\n", tickAtRestart+5)))

		By("exec and the host port work")
		stdout, _, err := kubeletExec(ctx, "spdy", other, "ticker", "", "echo", "after restart")
		Expect(err).NotTo(HaveOccurred())
		Expect(stdout).To(Equal("after restart\n"))
		Eventually(func() (string, error) { return httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", hostPort+2)) }).
			WithTimeout(30 * time.Second).WithPolling(poll).Should(ContainSubstring("Welcome to nginx!"))

		By("teardown leaves nothing behind")
		removeAndExpectNoTrace(ctx, pods...)
	})
})
