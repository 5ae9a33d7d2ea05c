package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/runtime/logs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testPod is a running pod with a log directory, for container specs.
type testPod struct {
	ID     string
	Config *runtimeapi.PodSandboxConfig
}

// runTestPod runs a pod whose containers log under a temporary directory.
func runTestPod(ctx context.Context, prefix string) testPod {
	GinkgoHelper()
	config := podConfig(prefix)
	config.LogDirectory = GinkgoT().TempDir()
	return testPod{ID: runPod(ctx, config), Config: config}
}

// containerConfig runs the busybox image with sh -c script, logging to
// NAME.log, in its own PID namespace as kubelet asks for pods without
// shareProcessNamespace (podConfig's pods).
func containerConfig(name, script string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxImage},
		Command:  []string{"sh", "-c", script},
		LogPath:  name + ".log",
		Labels:   map[string]string{"container": name},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

// createContainer pulls the image if needed and creates the container.
func createContainer(ctx context.Context, pod testPod, config *runtimeapi.ContainerConfig) string {
	GinkgoHelper()
	pullImage(ctx, config.Image.Image, nil)
	resp, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config,
	})
	Expect(err).NotTo(HaveOccurred())
	return resp.ContainerId
}

func startContainer(ctx context.Context, id string) {
	GinkgoHelper()
	_, err := runtimeSvc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
	Expect(err).NotTo(HaveOccurred())
}

// runContainer creates and starts a container.
func runContainer(ctx context.Context, pod testPod, config *runtimeapi.ContainerConfig) string {
	GinkgoHelper()
	id := createContainer(ctx, pod, config)
	startContainer(ctx, id)
	return id
}

func containerStatus(ctx context.Context, id string) *runtimeapi.ContainerStatus {
	GinkgoHelper()
	resp, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	Expect(err).NotTo(HaveOccurred())
	return resp.Status
}

// waitExited waits for the container to exit and returns its status.
func waitExited(ctx context.Context, id string) *runtimeapi.ContainerStatus {
	GinkgoHelper()
	var st *runtimeapi.ContainerStatus
	Eventually(func() runtimeapi.ContainerState {
		st = containerStatus(ctx, id)
		return st.State
	}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(runtimeapi.ContainerState_CONTAINER_EXITED))
	return st
}

// containerLog is the content of a container's CRI log, one string per
// line, after checking every line parses in the CRI format.
func containerLog(pod testPod, name string) []string {
	GinkgoHelper()
	f, err := os.Open(filepath.Join(pod.Config.LogDirectory, name+".log"))
	if os.IsNotExist(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	entries, err := logs.ReadEntries(f)
	Expect(err).NotTo(HaveOccurred())
	var lines []string
	for _, e := range entries {
		lines = append(lines, strings.TrimRight(string(e.Content), "\n"))
	}
	return lines
}

// runToExit runs script in a new container of pod and returns its log lines
// and its exited status.
func runToExit(ctx context.Context, pod testPod, config *runtimeapi.ContainerConfig) ([]string, *runtimeapi.ContainerStatus) {
	GinkgoHelper()
	id := runContainer(ctx, pod, config)
	st := waitExited(ctx, id)
	var lines []string
	Eventually(func() []string {
		lines = containerLog(pod, config.Metadata.Name)
		return lines
	}).WithTimeout(5*time.Second).Should(Not(BeNil()), fmt.Sprintf("log of %s", config.Metadata.Name))
	return lines, st
}
