package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("ExecSync of a missing binary", func() {
	It("fails with an error that names the binary", func(ctx context.Context) {
		pod := runTestPod(ctx, "execsync-missing")
		id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 3600"))
		_, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"no-such-binary"}, Timeout: 10})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("no-such-binary"))
	})
})
