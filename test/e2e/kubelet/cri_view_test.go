package kubelet

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubelet labels every sandbox and container with its pod's UID.
const podUIDLabel = "io.kubernetes.pod.uid"

// sandboxesOf lists the CRI sandboxes slipwayd holds for the pod uid.
func sandboxesOf(ctx context.Context, uid types.UID) []*runtimeapi.PodSandbox {
	GinkgoHelper()
	resp, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{podUIDLabel: string(uid)},
	}})
	Expect(err).NotTo(HaveOccurred())
	return resp.Items
}

// containersOf lists the CRI containers slipwayd holds for the pod uid.
func containersOf(ctx context.Context, uid types.UID) []*runtimeapi.Container {
	GinkgoHelper()
	resp, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{podUIDLabel: string(uid)},
	}})
	Expect(err).NotTo(HaveOccurred())
	return resp.Containers
}

// removeAllPods stops and removes every sandbox slipwayd holds (with its
// containers), for the suite's end: kubelet is stopped by then.
func removeAllPods(ctx context.Context) {
	resp, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	Expect(err).NotTo(HaveOccurred())
	for _, s := range resp.Items {
		_, err := runtimeSvc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id})
		Expect(err).NotTo(HaveOccurred())
		_, err = runtimeSvc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id})
		Expect(err).NotTo(HaveOccurred())
	}
}

// runningContainer is the ID of the pod's running CRI container named name;
// it waits for one.
func runningContainer(ctx context.Context, uid types.UID, name string) string {
	GinkgoHelper()
	var id string
	Eventually(func(g Gomega) {
		id = ""
		for _, c := range containersOf(ctx, uid) {
			if c.Metadata.Name == name && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				id = c.Id
			}
		}
		g.Expect(id).NotTo(BeEmpty(), "no running container %s", name)
	}).WithTimeout(podTimeout).WithPolling(poll).Should(Succeed())
	return id
}

// criExec runs cmd in the pod's running container name through the CRI
// (ExecSync, not kubelet) and fails the spec unless it exits 0.
func criExec(ctx context.Context, uid types.UID, name string, cmd ...string) string {
	GinkgoHelper()
	resp, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
		ContainerId: runningContainer(ctx, uid, name), Cmd: cmd, Timeout: 30,
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.ExitCode).To(BeZero(), "%v: %s%s", cmd, resp.Stdout, resp.Stderr)
	return string(resp.Stdout)
}

// attempts lists the CRI attempt numbers of the pod's containers named
// name, with their states.
func attempts(ctx context.Context, uid types.UID, name string) map[uint32]runtimeapi.ContainerState {
	GinkgoHelper()
	out := map[uint32]runtimeapi.ContainerState{}
	for _, c := range containersOf(ctx, uid) {
		if c.Metadata.Name == name {
			out[c.Metadata.Attempt] = c.State
		}
	}
	return out
}
