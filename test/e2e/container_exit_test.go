package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Container exits", func() {
	It("report exit code 3 with reason Error, and 0 with Completed", func(ctx context.Context) {
		pod := runTestPod(ctx, "exit")
		_, st := runToExit(ctx, pod, containerConfig("fails", "echo failing; exit 3"))
		Expect(st.ExitCode).To(BeEquivalentTo(3))
		Expect(st.Reason).To(Equal("Error"))
		Expect(st.FinishedAt).To(BeNumerically(">=", st.StartedAt))
		Expect(st.StartedAt).To(BeNumerically(">=", st.CreatedAt))

		lines, st := runToExit(ctx, pod, containerConfig("succeeds", "echo done"))
		Expect(st.ExitCode).To(BeZero())
		Expect(st.Reason).To(Equal("Completed"))
		Expect(lines).To(Equal([]string{"done"}))
	})

	It("reports OOMKilled for a container that allocates past its memory limit", func(ctx context.Context) {
		pod := runTestPod(ctx, "oom")
		config := containerConfig("hog", "tail /dev/zero")
		config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
		st := waitExited(ctx, runContainer(ctx, pod, config))
		Expect(st.Reason).To(Equal("OOMKilled"))
		Expect(st.ExitCode).To(BeEquivalentTo(137))
	})

	It("stays recorded across a slipwayd restart, including an exit that happened meanwhile", func(ctx context.Context) {
		pod := runTestPod(ctx, "exit-restart")
		done := runContainer(ctx, pod, containerConfig("done", "exit 4"))
		waitExited(ctx, done)
		later := runContainer(ctx, pod, containerConfig("later", "sleep 2; exit 5"))
		running := runContainer(ctx, pod, containerConfig("running", "sleep 1000"))

		daemon.restart(ctx)

		Expect(containerStatus(ctx, done).ExitCode).To(BeEquivalentTo(4))
		Expect(waitExited(ctx, later).ExitCode).To(BeEquivalentTo(5))
		Expect(containerStatus(ctx, running).State).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
		_, err := runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: running, Timeout: 1})
		Expect(err).NotTo(HaveOccurred())
		Expect(containerStatus(ctx, running).State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
	})
})
