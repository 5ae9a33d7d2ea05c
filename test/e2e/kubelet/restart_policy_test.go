package kubelet

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// exitsPod has a container that succeeds and one that fails with 3.
func exitsPod(prefix string, policy corev1.RestartPolicy) *corev1.Pod {
	pod := newPod(prefix, shell("succeeds", "echo done; exit 0"), shell("fails", "echo failing; exit 3"))
	pod.Spec.RestartPolicy = policy
	return pod
}

var _ = Describe("restartPolicy", func() {
	It("OnFailure restarts the container that exits non-zero and leaves the one that exits 0", func(ctx context.Context) {
		p := runStaticPod(exitsPod("onfailure", corev1.RestartPolicyOnFailure))
		uid := p.uid(ctx)
		pod := p.waitFor(ctx, "fails restarted", func(g Gomega, pod *corev1.Pod) {
			s := containerStatus(pod, "fails")
			g.Expect(s).NotTo(BeNil())
			g.Expect(s.RestartCount).To(BeNumerically(">=", 1))
			g.Expect(s.LastTerminationState.Terminated).NotTo(BeNil())
			ok := containerStatus(pod, "succeeds")
			g.Expect(ok).NotTo(BeNil())
			g.Expect(ok.State.Terminated).NotTo(BeNil())
		})
		Expect(containerStatus(pod, "fails").LastTerminationState.Terminated.ExitCode).To(Equal(int32(3)))
		ok := containerStatus(pod, "succeeds")
		Expect(ok.State.Terminated.ExitCode).To(BeZero())
		Expect(ok.State.Terminated.Reason).To(Equal("Completed"))
		Expect(ok.RestartCount).To(BeZero())
		Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))

		// The CRI never saw a second attempt of the container that succeeded.
		Expect(attempts(ctx, uid, "succeeds")).To(Equal(map[uint32]runtimeapi.ContainerState{0: runtimeapi.ContainerState_CONTAINER_EXITED}))
		Expect(attempts(ctx, uid, "fails")).To(HaveKey(BeNumerically(">=", uint32(1))))
	})

	It("Never runs each container once and fails the pod when one exits non-zero", func(ctx context.Context) {
		p := runStaticPod(exitsPod("never", corev1.RestartPolicyNever))
		uid := p.uid(ctx)
		pod := p.waitFor(ctx, "Failed", func(g Gomega, pod *corev1.Pod) {
			g.Expect(pod.Status.Phase).To(Equal(corev1.PodFailed))
		})
		for name, code := range map[string]int32{"succeeds": 0, "fails": 3} {
			s := containerStatus(pod, name)
			Expect(s).NotTo(BeNil(), name)
			Expect(s.State.Terminated).NotTo(BeNil(), name)
			Expect(s.State.Terminated.ExitCode).To(Equal(code), name)
			Expect(s.RestartCount).To(BeZero(), name)
			Expect(attempts(ctx, uid, name)).To(Equal(map[uint32]runtimeapi.ContainerState{0: runtimeapi.ContainerState_CONTAINER_EXITED}), name)
		}
		// A finished pod's sandbox is stopped.
		Eventually(func() []*runtimeapi.PodSandbox { return sandboxesOf(ctx, uid) }).WithTimeout(podTimeout).WithPolling(poll).
			Should(HaveEach(HaveField("State", runtimeapi.PodSandboxState_SANDBOX_NOTREADY)))
	})

	It("runs init containers in order, each to completion, before the app container", func(ctx context.Context) {
		shared := corev1.VolumeMount{Name: "shared", MountPath: "/shared"}
		first := shell("first", "echo first >>/shared/order")
		second := shell("second", "test \"$(cat /shared/order)\" = first && echo second >>/shared/order")
		app := shell("app", "cat /shared/order; echo app >>/shared/order; exec sleep 3600")
		for _, c := range []*corev1.Container{&first, &second, &app} {
			c.VolumeMounts = []corev1.VolumeMount{shared}
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
		pod := newPod("init", app)
		pod.Spec.InitContainers = []corev1.Container{first, second}
		pod.Spec.Volumes = []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
		p := runStaticPod(pod)
		uid := p.uid(ctx)
		status := p.waitReady(ctx)

		Expect(status.Status.InitContainerStatuses).To(HaveLen(2))
		for _, s := range status.Status.InitContainerStatuses {
			Expect(s.State.Terminated).NotTo(BeNil(), s.Name)
			Expect(s.State.Terminated.ExitCode).To(BeZero(), s.Name)
			Expect(s.RestartCount).To(BeZero(), s.Name)
		}
		firstDone := status.Status.InitContainerStatuses[0].State.Terminated
		secondRan := status.Status.InitContainerStatuses[1].State.Terminated
		Expect(secondRan.StartedAt.Time).NotTo(BeTemporally("<", firstDone.FinishedAt.Time))
		Expect(criExec(ctx, uid, "app", "cat", "/shared/order")).To(Equal("first\nsecond\napp\n"))
		for _, name := range []string{"first", "second"} {
			Expect(attempts(ctx, uid, name)).To(Equal(map[uint32]runtimeapi.ContainerState{0: runtimeapi.ContainerState_CONTAINER_EXITED}), name)
		}
		Expect(node.containerLogs(ctx, p, "app", "")).To(Equal("first\nsecond\n"))
	})
})
