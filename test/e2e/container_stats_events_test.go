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

	It("lists a running container's stats, its writable layer re-measured after it grows", func(ctx context.Context) {
		pod := runTestPod(ctx, "liststats")
		id := runContainer(ctx, pod, containerConfig("grower",
			"while [ ! -e /go ]; do sleep 0.1; done; head -c 4194304 /dev/zero > /big; sleep 3600"))
		listed := func() *runtimeapi.ContainerStats {
			list, err := runtimeSvc.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
				Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: pod.ID},
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(list.Stats).To(HaveLen(1))
			Expect(list.Stats[0].GetAttributes().GetId()).To(Equal(id))
			return list.Stats[0]
		}
		before := listed()
		Expect(before.GetCpu()).NotTo(BeNil())
		Expect(before.GetMemory().GetWorkingSetBytes()).NotTo(BeNil())
		Expect(before.GetWritableLayer()).NotTo(BeNil())
		Expect(before.GetWritableLayer().GetUsedBytes().GetValue()).To(BeNumerically("<", 4<<20))
		Expect(time.Unix(0, before.GetWritableLayer().GetTimestamp())).To(BeTemporally("<=", time.Now()))
		// The pod's stats carry its running container's, and its network
		// counters (read through the container's /proc).
		pods, err := runtimeSvc.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{
			Filter: &runtimeapi.PodSandboxStatsFilter{Id: pod.ID},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(pods.Stats).To(HaveLen(1))
		Expect(pods.Stats[0].GetLinux().GetContainers()).To(HaveLen(1))
		Expect(pods.Stats[0].GetLinux().GetContainers()[0].GetAttributes().GetId()).To(Equal(id))
		Expect(pods.Stats[0].GetLinux().GetNetwork().GetDefaultInterface().GetName()).To(Equal("eth0"))
		Expect(pods.Stats[0].GetLinux().GetNetwork().GetDefaultInterface().GetRxBytes()).NotTo(BeNil())

		_, err = runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"touch", "/go"}, Timeout: 10})
		Expect(err).NotTo(HaveOccurred())
		// ContainerStats measures in the call.
		Eventually(func() uint64 {
			resp, err := runtimeSvc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
			Expect(err).NotTo(HaveOccurred())
			return resp.Stats.GetWritableLayer().GetUsedBytes().GetValue()
		}).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 4<<20))
		// The list serves its latest measurement and re-measures one
		// older than 5 s in the background; none is over a minute old.
		Eventually(func() uint64 {
			return listed().GetWritableLayer().GetUsedBytes().GetValue()
		}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(BeNumerically(">=", 4<<20))
		after := listed()
		Expect(after.GetWritableLayer().GetTimestamp()).To(BeNumerically(">", before.GetWritableLayer().GetTimestamp()))
		Expect(after.GetCpu().GetTimestamp()).To(BeNumerically(">", before.GetCpu().GetTimestamp()))
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
