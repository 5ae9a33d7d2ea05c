package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Pods across a slipwayd restart", func() {
	It("keep their state, IPs and namespaces, and stop and remove cleanly afterwards", func(ctx context.Context) {
		config := podConfig("restart")
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		id := runPod(ctx, config)
		stopped := runPod(ctx, podConfig("restart-stopped"))
		stopPod(ctx, stopped)
		before := podStatus(ctx, id)
		infoBefore := podVerbose(ctx, id)

		daemon.restart(ctx)

		after := podStatus(ctx, id)
		Expect(after.State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_READY))
		Expect(after.Network.Ip).To(Equal(before.Network.Ip))
		Expect(after.CreatedAt).To(Equal(before.CreatedAt))
		Expect(podVerbose(ctx, id)).To(Equal(infoBefore))
		Expect(podStatus(ctx, stopped).State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_NOTREADY))
		Expect(infraProcesses()).To(Equal(1), "the infra process outlives slipwayd")
		out, err := inPod(ctx, infoBefore, "busybox", "ip", "addr", "show", "eth0")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring(before.Network.Ip))

		resp, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.PodSandboxId).To(Equal(id), "the name is still bound to the pod")

		stopPod(ctx, id)
		Expect(infraProcesses()).To(BeZero())
		removePod(ctx, id)
		removePod(ctx, stopped)
	})
})
