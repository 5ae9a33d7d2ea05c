package kubelet

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// probe checks every second and gives up after one failure.
func probe(h corev1.ProbeHandler) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 5, FailureThreshold: 1}
}

func execProbe(cmd ...string) *corev1.Probe {
	return probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}})
}

func httpProbe(port int, path string) *corev1.Probe {
	return probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt(port), Path: path}})
}

func tcpProbe(port int) *corev1.Probe {
	return probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}})
}

// probedPod has one container per kind of probe. The readiness probes of
// exec, http and tcp fail until the spec opens a gate in the container
// (a file the probe looks for, or the listener it waits on), so Ready
// means kubelet ran each probe against slipway's pod and saw it pass;
// web is probed over TCP for both readiness and liveness from the start.
func probedPod() *corev1.Pod {
	execC := shell("exec", "exec sleep 3600")
	execC.ReadinessProbe = execProbe("cat", "/tmp/ready")
	execC.LivenessProbe = execProbe("test", "-d", "/tmp")

	httpC := shell("http", "mkdir -p /www && echo alive >/www/healthz && exec httpd -f -p 8080 -h /www")
	httpC.ReadinessProbe = httpProbe(8080, "/ready")
	httpC.LivenessProbe = httpProbe(8080, "/healthz")

	tcpC := shell("tcp", "while [ ! -e /tmp/listen ]; do sleep 0.2; done; exec nc -ll -p 9090 -e true")
	tcpC.ReadinessProbe = tcpProbe(9090)

	web := corev1.Container{Name: "web", Image: nginxImage}
	web.ReadinessProbe = tcpProbe(80)
	web.LivenessProbe = tcpProbe(80)
	return newPod("probes", execC, httpC, tcpC, web)
}

// openProbeGates makes the gated readiness probes of probedPod pass.
func openProbeGates(ctx context.Context, p *staticPod) {
	GinkgoHelper()
	uid := p.uid(ctx)
	criExec(ctx, uid, "exec", "touch", "/tmp/ready")
	criExec(ctx, uid, "http", "sh", "-c", "echo ready >/www/ready")
	criExec(ctx, uid, "tcp", "touch", "/tmp/listen")
}

var _ = Describe("Probes", func() {
	It("bring a pod with exec, HTTP and TCP readiness and liveness probes to Ready", func(ctx context.Context) {
		p := runStaticPod(probedPod())
		// Every container runs, and the gated ones are not ready yet.
		p.waitFor(ctx, "containers running, gated ones not ready", func(g Gomega, pod *corev1.Pod) {
			g.Expect(pod.Status.ContainerStatuses).To(HaveLen(4))
			for _, s := range pod.Status.ContainerStatuses {
				g.Expect(s.State.Running).NotTo(BeNil(), "container %s", s.Name)
				g.Expect(s.Ready).To(Equal(s.Name == "web"), "container %s ready", s.Name)
			}
		})
		Expect(podCondition(mustStatus(ctx, p), corev1.PodReady)).To(Equal(corev1.ConditionFalse))

		openProbeGates(ctx, p)
		pod := p.waitReady(ctx)
		for _, s := range pod.Status.ContainerStatuses {
			Expect(s.Ready).To(BeTrue(), "container %s", s.Name)
			Expect(s.RestartCount).To(BeZero(), "container %s: liveness probes pass", s.Name)
			Expect(s.ContainerID).To(HavePrefix("slipway://"), "container %s", s.Name)
		}
		Expect(pod.Status.PodIP).To(HavePrefix("10.252.40."))

		uid := p.uid(ctx)
		sandboxes := sandboxesOf(ctx, uid)
		Expect(sandboxes).To(HaveLen(1))
		Expect(sandboxes[0].State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_READY))
		for _, name := range []string{"exec", "http", "tcp", "web"} {
			Expect(attempts(ctx, uid, name)).To(Equal(map[uint32]runtimeapi.ContainerState{
				0: runtimeapi.ContainerState_CONTAINER_RUNNING,
			}), "container %s", name)
		}
	})
})

// mustStatus is kubelet's view of a pod it has.
func mustStatus(ctx context.Context, p *staticPod) *corev1.Pod {
	GinkgoHelper()
	pod, err := p.status(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(pod).NotTo(BeNil(), "kubelet has no pod %s", p.name())
	return pod
}
