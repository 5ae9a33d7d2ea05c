package e2e

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("NRI plugins", func() {
	It("adjust a container's env and mounts and see a pod's every event in order", func(ctx context.Context) {
		hostDir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(hostDir, "hello"), []byte("from-the-host"), 0o644)).To(Succeed())
		plugin := startNRIPlugin(hostDir)

		pod := runTestPod(ctx, "nri")
		id := runContainer(ctx, pod, containerConfig("adjusted",
			`echo "env=$`+nriEnvKey+`"; echo "mount=$(cat `+nriMountDir+`/hello)"; exec sleep 1000`))
		Eventually(func() []string { return containerLog(pod, "adjusted") }).Should(Equal([]string{
			"env=" + nriEnvValue, "mount=from-the-host",
		}), "the container sees the plugin's env and mount")

		_, err := runtimeSvc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512},
		})
		Expect(err).NotTo(HaveOccurred())
		_, err = runtimeSvc.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
			PodSandboxId: pod.ID, Resources: &runtimeapi.LinuxContainerResources{CpuShares: 1024},
		})
		Expect(err).NotTo(HaveOccurred())
		_, err = runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0})
		Expect(err).NotTo(HaveOccurred())
		_, err = runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())
		stopPod(ctx, pod.ID)
		removePod(ctx, pod.ID)

		Eventually(func() []string { return nriEventsOf(plugin, pod.ID) }).Should(Equal([]string{
			"RunPodSandbox",
			"CreateContainer", "PostCreateContainer",
			"StartContainer", "PostStartContainer",
			"UpdateContainer", "PostUpdateContainer",
			"UpdatePodSandbox", "PostUpdatePodSandbox",
			"StopContainer", "RemoveContainer",
			"StopPodSandbox", "RemovePodSandbox",
		}))
	})
})
