package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Races between calls, and clients that give up: every call ends in a
// consistent state and nothing is left behind (the fault node's leak check
// runs after each spec).
var _ = Describe("Races", Ordered, func() {
	node := withFaultNode(embeddedContainerd)

	It("finishes a pod teardown whose client gave up, and a retry joins it", func(ctx context.Context) {
		const pods = 12
		var ids []string
		for i := range pods {
			config := podConfig(fmt.Sprintf("giveup-%d", i))
			config.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: int32(21000 + i), HostIp: "127.0.0.1"}}
			ids = append(ids, runPod(ctx, config))
		}
		// Every remove gives up long before CNI DEL can finish, as crictl's
		// 2 s timeout did with `crictl rmp -fa` of many pods.
		var wg sync.WaitGroup
		var gaveUp sync.Map
		for _, id := range ids {
			wg.Go(func() {
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
				defer cancel()
				_, err := runtimeSvc.RemovePodSandbox(callCtx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
				if status.Code(err) == codes.DeadlineExceeded {
					gaveUp.Store(id, true)
				}
			})
		}
		wg.Wait()
		n := 0
		gaveUp.Range(func(any, any) bool { n++; return true })
		Expect(n).To(BeNumerically(">", 0), "some removes gave up")
		// A retry of each joins the teardown in flight or finds it done.
		for _, id := range ids {
			removePod(ctx, id)
		}
		Eventually(func() []*runtimeapi.PodSandbox {
			resp, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			Expect(err).NotTo(HaveOccurred())
			return resp.Items
		}).WithTimeout(30 * time.Second).Should(BeEmpty())
		log, err := os.ReadFile(node.Log.Name())
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Contains(string(log), "signal: killed")).To(BeFalse(), "no CNI plugin was killed half-way")
		AddReportEntry("removes that gave up", fmt.Sprintf("%d of %d", n, pods))
	})

	It("leaves no orphan when CreateContainer races RemovePodSandbox", func(ctx context.Context) {
		created, refused := 0, 0
		for i := range 10 {
			pod := runTestPod(ctx, fmt.Sprintf("race-create-%d", i))
			var wg sync.WaitGroup
			var createErr error
			wg.Go(func() {
				_, createErr = runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
					PodSandboxId: pod.ID, Config: containerConfig("racer", "sleep 3600"), SandboxConfig: pod.Config,
				})
			})
			wg.Go(func() { removePod(ctx, pod.ID) })
			wg.Wait()
			if createErr == nil {
				created++
			} else {
				refused++
				Expect(status.Code(createErr)).To(BeElementOf(codes.NotFound, codes.FailedPrecondition), "CreateContainer: %v", createErr)
			}
			resp, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Containers).To(BeEmpty(), "a container created before the remove is removed with its pod")
		}
		AddReportEntry("CreateContainer against RemovePodSandbox", fmt.Sprintf("%d created then removed, %d refused", created, refused))
	})

	It("never turns a recorded exit back into running with a resource update", func(ctx context.Context) {
		pod := runTestPod(ctx, "race-update")
		id := runContainer(ctx, pod, containerConfig("exits", "sleep 1; exit 3"))
		deadline := time.Now().Add(3 * time.Second)
		for i := int64(0); time.Now().Before(deadline); i++ {
			_, err := runtimeSvc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
				ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512 + i%512},
			})
			Expect(err).NotTo(HaveOccurred())
		}
		st := containerStatus(ctx, id)
		Expect(st.State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
		Expect(st.ExitCode).To(BeEquivalentTo(3))
		Expect(st.FinishedAt).To(BeNumerically(">=", st.StartedAt))
	})
})
