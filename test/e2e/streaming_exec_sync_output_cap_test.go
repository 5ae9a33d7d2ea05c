package e2e

import (
	"bytes"
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/runtime/container"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("ExecSync output", func() {
	It("is capped at 16 MiB per stream with a truncation marker", func(ctx context.Context) {
		pod := runTestPod(ctx, "execsync-cap")
		id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 3600"))

		resp, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
			ContainerId: id, Cmd: []string{"sh", "-c", "head -c 20971520 /dev/zero | tr '\\0' a; echo small >&2; exit 4"}, Timeout: 60,
		}, grpc.MaxCallRecvMsgSize(64<<20))
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.ExitCode).To(BeEquivalentTo(4))
		Expect(resp.Stdout).To(HaveLen(container.MaxExecOutput + len(container.TruncationMarker)))
		Expect(bytes.Count(resp.Stdout[:container.MaxExecOutput], []byte("a"))).To(Equal(container.MaxExecOutput))
		Expect(string(resp.Stdout[container.MaxExecOutput:])).To(Equal(container.TruncationMarker))
		Expect(string(resp.Stderr)).To(Equal("small\n"))
	})
})
