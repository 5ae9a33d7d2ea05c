package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Faults: containerd and slipwayd are killed while containers run and while
// pods come and go. Afterwards every container is listed with its true
// state and real exit, Stop works, and removing the pods leaves nothing.
var _ = Describe("Faults", Ordered, func() {
	for _, mode := range []faultMode{embeddedContainerd, externalContainerd} {
		Context("with an "+string(mode), Ordered, func() {
			node := withFaultNode(mode)

			It("records the real exit of a container that ends when containerd is killed, and stops the others", func(ctx context.Context) {
				pod := runTestPod(ctx, "fault-ctrd")
				ender := runContainer(ctx, pod, containerConfig("ender", enderScript))
				sleeper := runContainer(ctx, pod, containerConfig("sleeper", sleeperScript))
				pid := containerPid(ctx, ender)

				node.killContainerd()
				endedAfter, _ := endContainer(pid)
				if mode == externalContainerd {
					node.startContainerd(ctx)
				}
				recovered := waitExitRecorded(ctx, ender, endedAfter)
				AddReportEntry(fmt.Sprintf("exit recorded after containerd was killed (%s)", mode), recovered.String())

				_, err := runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 2})
				Expect(err).NotTo(HaveOccurred())
				st := containerStatus(ctx, sleeper)
				Expect(st.State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
				Expect(st.ExitCode).To(BeEquivalentTo(143), "the sleeper ends on the stop signal, SIGTERM")
			})

			It("keeps running containers and records the real exit of one that ends while slipwayd is down", func(ctx context.Context) {
				pod := runTestPod(ctx, "fault-kill")
				ender := runContainer(ctx, pod, containerConfig("ender", enderScript))
				sleeper := runContainer(ctx, pod, containerConfig("sleeper", sleeperScript))
				enderPid, sleeperPid := containerPid(ctx, ender), containerPid(ctx, sleeper)

				node.kill()
				endedAfter, endedBefore := endContainer(enderPid)
				restartedAt := time.Now()
				node.startAgain(ctx)
				AddReportEntry(fmt.Sprintf("slipwayd serving again after SIGKILL (%s)", mode), time.Since(restartedAt).String())

				st := containerStatus(ctx, ender)
				Expect(st.State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
				Expect(st.ExitCode).To(BeEquivalentTo(7))
				Expect(st.Reason).To(Equal("Error"))
				Expect(time.Unix(0, st.FinishedAt)).To(BeTemporally(">=", endedAfter), "the exit time is the real one")
				Expect(time.Unix(0, st.FinishedAt)).To(BeTemporally("<=", endedBefore.Add(time.Second)), "the exit time is the real one, not the restart's")

				st = containerStatus(ctx, sleeper)
				Expect(st.State).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
				Expect(containerPid(ctx, sleeper)).To(Equal(sleeperPid))
				_, err := runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 2})
				Expect(err).NotTo(HaveOccurred())
				Expect(containerStatus(ctx, sleeper).State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
			})

			It("lists no half-made pod and leaks nothing when slipwayd is killed while pods come and go", func(ctx context.Context) {
				// Three kills, each after a different number of calls, so
				// they land at different points of the pod and container
				// lifecycles.
				var ops atomic.Int64
				for round, killAfter := range []int64{7, 19, 31} {
					var stop atomic.Bool
					var workers sync.WaitGroup
					ops.Store(0)
					for w := range 2 {
						workers.Go(func() {
							defer GinkgoRecover()
							for i := 0; !stop.Load(); i++ {
								churnPod(ctx, fmt.Sprintf("churn-%d-%d-%d", round, w, i), &ops)
							}
						})
					}
					Eventually(ops.Load).WithTimeout(60 * time.Second).WithPolling(time.Millisecond).Should(BeNumerically(">=", killAfter))
					node.kill()
					stop.Store(true)
					workers.Wait()
					node.startAgain(ctx)
				}

				pods, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
				Expect(err).NotTo(HaveOccurred())
				for _, p := range pods.Items {
					if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
						continue
					}
					info := podVerbose(ctx, p.Id)
					Expect(info.Namespaces).NotTo(BeEmpty(), "a ready pod has its namespaces")
					for kind, path := range info.Namespaces {
						Expect(path).To(BeAnExistingFile(), "pod %s namespace %s", p.Id, kind)
					}
				}
				containers, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
				Expect(err).NotTo(HaveOccurred())
				for _, c := range containers.Containers {
					if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
						Expect(processAlive(containerPid(ctx, c.Id))).To(BeTrue(), "a running container's process runs")
					}
				}
				AddReportEntry(fmt.Sprintf("churn before SIGKILL (%s)", mode), fmt.Sprintf("%d operations; %d pods and %d containers listed after", ops.Load(), len(pods.Items), len(containers.Containers)))
			})

			if mode == externalContainerd {
				It("fails calls fast with Unavailable and reports the runtime not ready while containerd is down", func(ctx context.Context) {
					pod := runTestPod(ctx, "fault-down")
					sleeper := runContainer(ctx, pod, containerConfig("sleeper", sleeperScript))
					created := createContainer(ctx, pod, containerConfig("created", "sleep 3600"))

					node.killContainerd()
					Eventually(runtimeReady).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeFalse())
					callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
					defer cancel()
					_, err := runtimeSvc.StartContainer(callCtx, &runtimeapi.StartContainerRequest{ContainerId: created})
					Expect(status.Code(err)).To(Equal(codes.Unavailable), "StartContainer: %v", err)
					_, err = runtimeSvc.StopContainer(callCtx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 1})
					Expect(status.Code(err)).To(Equal(codes.Unavailable), "StopContainer: %v", err)
					_, err = runtimeSvc.RunPodSandbox(callCtx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("fault-down-new")})
					Expect(status.Code(err)).To(Equal(codes.Unavailable), "RunPodSandbox: %v", err)
					_, err = imageSvc.PullImage(callCtx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busyboxImage}})
					Expect(status.Code(err)).To(Equal(codes.Unavailable), "PullImage: %v", err)
					Expect(callCtx.Err()).NotTo(HaveOccurred(), "no call waited for containerd")
					Expect(containerStatus(ctx, sleeper).State).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING), "reads are served from memory")

					node.startContainerd(ctx)
					Eventually(runtimeReady).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeTrue())
					Expect(containerStatus(ctx, created).State).To(Equal(runtimeapi.ContainerState_CONTAINER_CREATED), "a start that failed on a down containerd leaves the container created")
					startContainer(ctx, created)
					_, err = runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 2})
					Expect(err).NotTo(HaveOccurred())
					Expect(containerStatus(ctx, sleeper).State).To(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
				})
			}
		})
	}
})

// waitExitRecorded waits until an enderScript container that ended after
// endedAfter is listed as exited with code 7 and its real exit time, and
// returns how long that took.
func waitExitRecorded(ctx context.Context, id string, endedAfter time.Time) time.Duration {
	GinkgoHelper()
	var st *runtimeapi.ContainerStatus
	Eventually(func() runtimeapi.ContainerState {
		st = containerStatus(ctx, id)
		return st.State
	}).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(Equal(runtimeapi.ContainerState_CONTAINER_EXITED),
		"the exit is recorded once containerd answers again")
	took := time.Since(endedAfter)
	Expect(st.ExitCode).To(BeEquivalentTo(7))
	Expect(st.Reason).To(Equal("Error"))
	Expect(time.Unix(0, st.FinishedAt)).To(BeTemporally(">=", endedAfter))
	Expect(st.FinishedAt).To(BeNumerically(">=", st.StartedAt))
	return took
}

// churnPod runs a pod with a container and removes it again, counting the
// calls that succeeded; it gives up at the first failure (slipwayd was
// killed), leaving whatever the kill left.
func churnPod(ctx context.Context, name string, ops *atomic.Int64) {
	config := podConfig(name)
	config.LogDirectory = GinkgoT().TempDir()
	if ops.Load()%3 == 0 {
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	}
	pod, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
	if err != nil {
		return
	}
	ops.Add(1)
	c, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId, Config: containerConfig("churn", "sleep 3600"), SandboxConfig: config,
	})
	if err != nil {
		return
	}
	ops.Add(1)
	if _, err := runtimeSvc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		return
	}
	ops.Add(1)
	if _, err := runtimeSvc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		return
	}
	ops.Add(1)
	if _, err := runtimeSvc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		return
	}
	ops.Add(1)
}
