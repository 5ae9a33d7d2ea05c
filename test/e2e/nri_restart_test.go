package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/nriplugin"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("NRI plugins across a slipwayd restart", func() {
	It("are synchronized with the pods and containers that outlived it and get their later events", func(ctx context.Context) {
		plugin := startNRIPlugin(GinkgoT().TempDir())
		pod := runTestPod(ctx, "nri-restart")
		id := runContainer(ctx, pod, containerConfig("survivor", "exec sleep 1000"))
		synced := len(plugin.Syncs())

		daemon.restart(ctx)
		Eventually(func() []nriplugin.Sync { return plugin.Syncs()[synced:] }).
			WithTimeout(60*time.Second).Should(ContainElement(SatisfyAll(
			HaveField("PodIDs", ContainElement(pod.ID)),
			HaveField("ContainerIDs", ContainElement(id)),
		)), "the plugin reconnects and is synchronized with the pod and its container")

		before := len(nriEventsOf(plugin, pod.ID))
		_, err := runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0})
		Expect(err).NotTo(HaveOccurred())
		_, err = runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())
		stopPod(ctx, pod.ID)
		removePod(ctx, pod.ID)
		Eventually(func() []string { return nriEventsOf(plugin, pod.ID)[before:] }).Should(Equal([]string{
			"StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox",
		}))
	})
})
