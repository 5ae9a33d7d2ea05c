package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("ExecSync with a timeout", func() {
	It("returns in time when a background child keeps the output pipes open", func(ctx context.Context) {
		pod := runTestPod(ctx, "execsync-bg")
		id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 3600"))

		// Had the call waited for the background child, it would have hit
		// its own timeout and answered DeadlineExceeded instead.
		resp, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
			ContainerId: id, Cmd: []string{"sh", "-c", "echo started; sleep 100 &"}, Timeout: 5,
		})
		Expect(err).NotTo(HaveOccurred(), "the call waits for neither the child nor the timeout")
		Expect(resp.ExitCode).To(BeZero())
		Expect(string(resp.Stdout)).To(Equal("started\n"))

		// A command that outlives its timeout is cut off and gone.
		_, err = runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "101"}, Timeout: 1})
		Expect(status.Code(err)).To(Equal(codes.DeadlineExceeded), "%v", err)
		Eventually(func() string {
			resp, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
				ContainerId: id, Cmd: []string{"sh", "-c", "ps -o args | grep -c '^sleep 101$' || true"}, Timeout: 5,
			})
			Expect(err).NotTo(HaveOccurred())
			return string(resp.Stdout)
		}).Should(Equal("0\n"), "the timed-out process is killed")
	})
})
