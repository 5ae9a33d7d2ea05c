package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Attach across a slipwayd restart", func() {
	It("reaches a stdin_once shell started before the restart, and closes its stdin after", func(ctx context.Context) {
		requireTool("crictl")
		pod := runTestPod(ctx, "attach-restart")
		config := containerConfig("shell", "")
		config.Command = []string{"sh"}
		config.Stdin, config.StdinOnce = true, true
		id := runContainer(ctx, pod, config)

		daemon.restart(ctx)

		stdout, _ := crictlWithStdin(ctx, "echo after-restart\n", "attach", "-i", id)
		Expect(stdout).To(Equal("after-restart\n"), "the attach lasts until the shell exits at the end of its stdin")
		st := waitExited(ctx, id)
		Expect(st.ExitCode).To(BeZero())
		Expect(st.State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
	})
})
