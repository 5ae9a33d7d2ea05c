package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Container logs", func() {
	It("are written in the CRI format with both streams, and follow kubelet's rotation", func(ctx context.Context) {
		pod := runTestPod(ctx, "logs")
		config := containerConfig("logger", "echo out; echo err >&2; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after-rotate")
		id := runContainer(ctx, pod, config)
		logPath := filepath.Join(pod.Config.LogDirectory, "logger.log")
		Eventually(func() []string { return containerLog(pod, "logger") }).Should(ConsistOf("out", "err"))

		// kubelet's rotation: rename the file, then ask for a reopen.
		Expect(os.Rename(logPath, logPath+".1")).To(Succeed())
		_, err := runtimeSvc.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())
		Expect(logPath).To(BeAnExistingFile())

		Expect(os.WriteFile(filepath.Join(rootfsOf(ctx, id), "tmp", "go"), nil, 0o644)).To(Succeed())
		Eventually(func() []string { return containerLog(pod, "logger") }).WithTimeout(10 * time.Second).Should(Equal([]string{"after-rotate"}))
	})
})

// rootfsOf is where a running container's root filesystem is visible from
// the host.
func rootfsOf(ctx context.Context, id string) string {
	GinkgoHelper()
	return "/proc/" + pidOf(ctx, id) + "/root"
}

func pidOf(ctx context.Context, id string) string {
	GinkgoHelper()
	resp, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	Expect(err).NotTo(HaveOccurred())
	var info struct {
		Pid int `json:"pid"`
	}
	Expect(json.Unmarshal([]byte(resp.Info["info"]), &info)).To(Succeed())
	Expect(info.Pid).To(BeNumerically(">", 0))
	return strconv.Itoa(info.Pid)
}
