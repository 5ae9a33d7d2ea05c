package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var podSeq atomic.Int64

// podConfig is a pod config with a unique name and, as kubelet sends for a
// pod without shareProcessNamespace, per-container PID namespaces.
func podConfig(prefix string) *runtimeapi.PodSandboxConfig {
	n := podSeq.Add(1)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: fmt.Sprintf("%s-%d", prefix, n), Namespace: "e2e", Uid: fmt.Sprintf("uid-%s-%d", prefix, n),
		},
		Labels: map[string]string{"suite": "e2e", "test": prefix},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

// runPod runs a pod and registers its removal.
func runPod(ctx context.Context, config *runtimeapi.PodSandboxConfig) string {
	GinkgoHelper()
	resp, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
	Expect(err).NotTo(HaveOccurred())
	id := resp.PodSandboxId
	DeferCleanup(func(ctx context.Context) { removePod(ctx, id) })
	return id
}

func stopPod(ctx context.Context, id string) {
	GinkgoHelper()
	_, err := runtimeSvc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	Expect(err).NotTo(HaveOccurred())
}

func removePod(ctx context.Context, id string) {
	GinkgoHelper()
	_, err := runtimeSvc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	Expect(err).NotTo(HaveOccurred())
}

func podStatus(ctx context.Context, id string) *runtimeapi.PodSandboxStatus {
	GinkgoHelper()
	resp, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	Expect(err).NotTo(HaveOccurred())
	return resp.Status
}

// podInfo is the verbose status's record of the pod.
type podInfo struct {
	Namespaces map[string]string
	Dir        string
	ShmPath    string
	Infra      bool
	ShimGroup  string
}

func podVerbose(ctx context.Context, id string) podInfo {
	GinkgoHelper()
	resp, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	Expect(err).NotTo(HaveOccurred())
	var info podInfo
	Expect(json.Unmarshal([]byte(resp.Info["info"]), &info)).To(Succeed())
	return info
}

// inPod runs a host command inside the pod's pinned namespaces (nsenter).
func inPod(ctx context.Context, info podInfo, args ...string) (string, error) {
	nsArgs := []string{}
	for kind, flag := range map[string]string{"net": "--net", "uts": "--uts", "ipc": "--ipc"} {
		if p, ok := info.Namespaces[kind]; ok {
			nsArgs = append(nsArgs, flag+"="+p)
		}
	}
	out, err := exec.CommandContext(ctx, "nsenter", append(nsArgs, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
