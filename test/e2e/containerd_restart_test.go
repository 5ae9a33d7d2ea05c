package e2e

import (
	"context"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("The embedded containerd", func() {
	It("is restarted after it is killed, and its images survive", func(ctx context.Context) {
		id := pullImage(ctx, busyboxImage, nil)
		DeferCleanup(removeImage, context.Background(), id)

		pid := daemon.ContainerdPid()
		Expect(pid).To(BeNumerically(">", 0))
		Expect(runtimeReady(ctx)).To(BeTrue())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())

		Eventually(daemon.ContainerdPid).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).
			ShouldNot(Or(Equal(pid), BeZero()), "a new containerd should start")
		Eventually(runtimeReady).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).
			Should(BeTrue())

		Expect(imageStatus(ctx, busyboxImage).GetId()).To(Equal(id))
		removeImage(ctx, id)
		Expect(pullImage(ctx, busyboxImage, nil)).To(Equal(id), "pulls work on the new containerd")
	})
})

func runtimeReady(ctx context.Context) bool {
	resp, err := runtimeSvc.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return false
	}
	for _, c := range resp.Status.Conditions {
		if c.Type == runtimeapi.RuntimeReady {
			return c.Status
		}
	}
	return false
}
