package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("A pod sharing its PID namespace", func() {
	It("runs the infra process from the synthetic rootfs and ends it on stop", func(ctx context.Context) {
		config := podConfig("sharedpid")
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		id := runPod(ctx, config)
		Expect(podVerbose(ctx, id).Infra).To(BeTrue())
		Expect(infraProcesses()).To(BeNumerically(">=", 1))

		stopPod(ctx, id)
		Eventually(infraProcesses).Should(BeZero())
	})

	It("runs no process at all for a pod with per-container PID namespaces", func(ctx context.Context) {
		id := runPod(ctx, podConfig("nopid"))
		Expect(podVerbose(ctx, id).Infra).To(BeFalse())
		Expect(infraProcesses()).To(BeZero())
	})
})

// infraProcesses counts running slipway-infra processes (the suite runs
// its specs one at a time, so all of them belong to the current spec).
func infraProcesses() int { return processesRunning("/infra") }
