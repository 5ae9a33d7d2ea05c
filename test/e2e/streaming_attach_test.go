package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("crictl attach", func() {
	for _, transport := range streamingTransports {
		It("talks to a running shell, which keeps its stdin between attaches, over "+transport, func(ctx context.Context) {
			requireTool("crictl")
			pod := runTestPod(ctx, "attach")
			config := containerConfig("shell", "")
			config.Command = []string{"sh"}
			config.Stdin = true
			id := runContainer(ctx, pod, config)

			first := startCrictl(ctx, "attach", "-i", "--transport", transport, id)
			first.write("echo attached-$((1+1)); echo oops >&2\n")
			first.waitStdout("attached-2\n")
			Eventually(first.stderr.String).WithTimeout(10 * time.Second).Should(ContainSubstring("oops"))
			first.end()
			Expect(containerStatus(ctx, id).State).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING),
				"without stdin_once, the end of one attach's input leaves the shell's stdin open")

			// The same shell answers the next attach; its output is in
			// its log as well, and the attach ends when it exits.
			second := startCrictl(ctx, "attach", "-i", "--transport", transport, id)
			second.write("echo again-$((2+1)); exit 3\n")
			second.waitStdout("again-3\n")
			Expect(waitExited(ctx, id).ExitCode).To(BeEquivalentTo(3))
			second.end()
			Eventually(func() []string { return containerLog(pod, "shell") }).WithTimeout(5*time.Second).
				Should(ConsistOf("attached-2", "oops", "again-3"), "stdout and stderr are separate pipes: no order between them")
		})
	}
})
