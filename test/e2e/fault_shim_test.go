package e2e

import (
	"context"
	"fmt"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Faults of a shim shared by several pods (a shim group, see package
// shimgroup): its death takes every container of every pod in the group,
// each listed with a true exited state; the group then serves new
// containers from a new shim; restarts of slipwayd and containerd keep
// the groups; removing the pods leaves no keeper, cgroup or mount
// (withFaultNode checks after each spec).
var _ = Describe("Faults of a shared shim", Ordered, func() {
	for _, mode := range []faultMode{embeddedContainerd, externalContainerd} {
		Context("with an "+string(mode), Ordered, func() {
			node := withFaultNode(mode)

			It("lists every container of every pod in the group exited when the shim is SIGKILLed, and starts new ones", func(ctx context.Context) {
				pods := []testPod{runTestPod(ctx, "shared-a"), runTestPod(ctx, "shared-b"), runTestPod(ctx, "shared-c")}
				group := podVerbose(ctx, pods[0].ID).ShimGroup
				Expect(group).NotTo(BeEmpty())
				var ids []string
				for i, pod := range pods {
					Expect(podVerbose(ctx, pod.ID).ShimGroup).To(Equal(group), "the pods fill one group")
					ids = append(ids, runContainer(ctx, pod, containerConfig(fmt.Sprintf("sleeper-%d", i), sleeperScript)))
				}
				ids = append(ids, runContainer(ctx, pods[0], containerConfig("second", sleeperScript)))
				shim := shimOf(ctx, ids[0])
				for _, id := range ids[1:] {
					Expect(shimOf(ctx, id)).To(Equal(shim), "every container of the group runs in one shim")
				}
				pids := map[string]int{}
				for _, id := range ids {
					pids[id] = containerPid(ctx, id)
				}

				killedAt := time.Now()
				Expect(syscall.Kill(shim, syscall.SIGKILL)).To(Succeed())
				for _, id := range ids {
					Eventually(func() runtimeapi.ContainerState { return containerStatus(ctx, id).State }).
						WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).
						Should(Equal(runtimeapi.ContainerState_CONTAINER_EXITED), "container %s is listed exited", id)
					st := containerStatus(ctx, id)
					Expect(st.ExitCode).NotTo(BeZero(), "a container killed with its shim did not succeed")
					Expect(time.Unix(0, st.FinishedAt)).To(BeTemporally(">=", killedAt.Add(-time.Second)))
					Expect(st.FinishedAt).To(BeNumerically(">=", st.StartedAt))
					Expect(processAlive(pids[id])).To(BeFalse(), "container %s's process is gone", id)
				}

				// The group serves new containers, all again in one new shim.
				again := runContainer(ctx, pods[1], containerConfig("again", sleeperScript))
				newShim := shimOf(ctx, again)
				Expect(newShim).NotTo(Equal(shim))
				Expect(shimOf(ctx, runContainer(ctx, pods[2], containerConfig("again", sleeperScript)))).To(Equal(newShim))
				_, err := runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: again, Timeout: 2})
				Expect(err).NotTo(HaveOccurred())
				Expect(containerStatus(ctx, again).ExitCode).To(BeEquivalentTo(143))
			})

			It("keeps a group's shim across restarts of slipwayd and containerd, and its pods' containers in it", func(ctx context.Context) {
				first := runTestPod(ctx, "shared-restart-a")
				before := runContainer(ctx, first, containerConfig("before", sleeperScript))
				shim := shimOf(ctx, before)
				group := podVerbose(ctx, first.ID).ShimGroup

				node.kill()
				node.startAgain(ctx)
				if mode == externalContainerd {
					node.killContainerd()
					node.startContainerd(ctx)
					Eventually(runtimeReady).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeTrue())
				}

				second := runTestPod(ctx, "shared-restart-b")
				Expect(podVerbose(ctx, second.ID).ShimGroup).To(Equal(group), "the restarted slipwayd knows the group and its room")
				after := runContainer(ctx, second, containerConfig("after", sleeperScript))
				Expect(shimOf(ctx, after)).To(Equal(shim), "the new pod's container joins the group's running shim")
				Expect(containerStatus(ctx, before).State).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))

				// The first pod leaving does not take the shim: the second's
				// container runs on and new ones start in it.
				removePod(ctx, first.ID)
				Expect(containerStatus(ctx, after).State).To(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING))
				Expect(shimOf(ctx, runContainer(ctx, second, containerConfig("later", sleeperScript)))).To(Equal(shim))
			})
		})
	}
})
