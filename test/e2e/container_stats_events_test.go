package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Container stats and events", func() {
	It("reports non-zero CPU and memory for a busy container", func(ctx context.Context) {
		pod := runTestPod(ctx, "stats")
		id := runContainer(ctx, pod, containerConfig("busy", "while true; do :; done"))
		Eventually(func() uint64 {
			resp, err := runtimeSvc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
			Expect(err).NotTo(HaveOccurred())
			return resp.Stats.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		}).WithTimeout(10 * time.Second).Should(BeNumerically(">", 0))
		resp, err := runtimeSvc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Stats.Memory.WorkingSetBytes.Value).To(BeNumerically(">", 0))
		Expect(resp.Stats.WritableLayer).NotTo(BeNil())

		list, err := runtimeSvc.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
			Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: pod.ID},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(list.Stats).To(HaveLen(1))
	})

	It("streams created, started, stopped and deleted events", func(ctx context.Context) {
		pod := runTestPod(ctx, "events")
		stream, err := runtimeSvc.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
		Expect(err).NotTo(HaveOccurred())
		events := make(chan *runtimeapi.ContainerEventResponse, 64)
		go func() {
			defer GinkgoRecover()
			for {
				ev, err := stream.Recv()
				if err != nil {
					close(events)
					return
				}
				events <- ev
			}
		}()
		id := runContainer(ctx, pod, containerConfig("evented", "exit 0"))
		waitExited(ctx, id)
		_, err = runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())

		var got []runtimeapi.ContainerEventType
		Eventually(func() []runtimeapi.ContainerEventType {
			for {
				select {
				case ev := <-events:
					if ev.ContainerId == id {
						got = append(got, ev.ContainerEventType)
						Expect(ev.PodSandboxStatus.GetId()).To(Equal(pod.ID))
					}
				default:
					return got
				}
			}
		}).WithTimeout(10 * time.Second).Should(Equal([]runtimeapi.ContainerEventType{
			runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
			runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
			runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
			runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
		}))
	})
})
