package e2e

import (
	"context"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Pod lifecycle", func() {
	It("stops and removes a pod, and both succeed again on a pod that is gone", func(ctx context.Context) {
		id := runPod(ctx, podConfig("lifecycle"))
		Expect(podStatus(ctx, id).State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_READY))
		stopPod(ctx, id)
		stopped := podStatus(ctx, id)
		Expect(stopped.State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_NOTREADY))
		Expect(stopped.Network).To(BeNil(), "a stopped pod has no IP")
		stopPod(ctx, id)
		removePod(ctx, id)
		_, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
		Expect(status.Code(err)).To(Equal(codes.NotFound))
		stopPod(ctx, id)
		removePod(ctx, id)
	})

	It("lists pods by ID prefix, state and labels", func(ctx context.Context) {
		a := runPod(ctx, podConfig("list-a"))
		b := runPod(ctx, podConfig("list-b"))
		stopPod(ctx, b)
		list := func(f *runtimeapi.PodSandboxFilter) []string {
			resp, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
			Expect(err).NotTo(HaveOccurred())
			var ids []string
			for _, p := range resp.Items {
				ids = append(ids, p.Id)
			}
			return ids
		}
		Expect(list(nil)).To(ContainElements(a, b))
		Expect(list(&runtimeapi.PodSandboxFilter{Id: a[:12]})).To(Equal([]string{a}))
		ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
		Expect(list(&runtimeapi.PodSandboxFilter{State: ready})).To(And(ContainElement(a), Not(ContainElement(b))))
		Expect(list(&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"test": "list-b"}})).To(Equal([]string{b}))
		Expect(list(&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"test": "list-b", "suite": "other"}})).To(BeEmpty())
	})

	It("answers concurrent retries of one RunPodSandbox with one pod", func(ctx context.Context) {
		config := podConfig("retry")
		ids := make([]string, 4)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				defer GinkgoRecover()
				resp, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
				Expect(err).NotTo(HaveOccurred())
				ids[i] = resp.PodSandboxId
			})
		}
		wg.Wait()
		DeferCleanup(func(ctx context.Context) { removePod(ctx, ids[0]) })
		for _, id := range ids {
			Expect(id).To(Equal(ids[0]))
		}
		resp, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
			Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"test": "retry"}},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Items).To(HaveLen(1))
	})

	It("refuses missing metadata and bad port mappings, naming the field", func(ctx context.Context) {
		_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}})
		expectInvalid(err, "config.metadata")
		config := podConfig("bad-port")
		config.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 70000}}
		_, err = runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
		expectInvalid(err, "port_mappings[0].container_port")
	})
})

// expectInvalid asserts an InvalidArgument error whose message names field.
func expectInvalid(err error, field string) {
	GinkgoHelper()
	Expect(status.Code(err)).To(Equal(codes.InvalidArgument), "%v", err)
	Expect(err.Error()).To(ContainSubstring(field))
}
