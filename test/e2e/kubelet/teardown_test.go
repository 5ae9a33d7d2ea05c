package kubelet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// gcTimeout bounds waiting for kubelet's garbage collector, which removes
// a deleted pod's sandboxes, exited containers and log directory once a
// minute.
const gcTimeout = 3 * time.Minute

// podTrace is what a running pod holds on the node, found by its UID and
// its sandboxes' IDs.
type podTrace struct {
	UID             types.UID
	Sandboxes       []string
	CRISandboxes    int
	CRIContainers   int
	Mounts          []string // mount points naming a sandbox (netns and namespace pins)
	IPAllocations   []string // host-local files naming a sandbox
	IptablesRules   []string // rules naming a sandbox (portmap, bridge masquerade)
	PodCgroups      []string // kubepods/.../pod<UID> in any hierarchy
	LogDir          bool     // /var/log/pods/NS_NAME_UID
	ContainerLogs   []string // /var/log/containers links
	ContainerCgroup []string // cgroups named by a container ID
}

// traceOf collects what the pod holds now.
func traceOf(ctx context.Context, p *staticPod, uid types.UID, sandboxes []string) podTrace {
	GinkgoHelper()
	t := podTrace{UID: uid, Sandboxes: sandboxes}
	t.CRISandboxes = len(sandboxesOf(ctx, uid))
	containers := containersOf(ctx, uid)
	t.CRIContainers = len(containers)
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && namesAny(fields[4], sandboxes) {
			t.Mounts = append(t.Mounts, fields[4])
		}
	}
	_ = filepath.WalkDir(testNet.IPAMDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil && namesAny(string(b), sandboxes) {
				t.IPAllocations = append(t.IPAllocations, path)
			}
		}
		return nil
	})
	rules, err := testNet.Rules()
	Expect(err).NotTo(HaveOccurred())
	for _, r := range rules {
		if namesAny(r, sandboxes) {
			t.IptablesRules = append(t.IptablesRules, r)
		}
	}
	for _, d := range host.podCgroups() {
		if strings.HasSuffix(d, "pod"+string(uid)) {
			t.PodCgroups = append(t.PodCgroups, d)
		}
	}
	_, err = os.Stat(filepath.Join(podLogsRoot, podNamespace+"_"+p.name()+"_"+string(uid)))
	t.LogDir = err == nil
	t.ContainerLogs, _ = filepath.Glob(filepath.Join(containerLogsRoot, p.name()+"_"+podNamespace+"_*"))
	for _, d := range host.cgroupDirs() {
		for _, c := range containers {
			if strings.Contains(filepath.Base(d), c.Id) {
				t.ContainerCgroup = append(t.ContainerCgroup, d)
			}
		}
	}
	return t
}

// namesAny reports whether s contains any of ids.
func namesAny(s string, ids []string) bool {
	for _, id := range ids {
		if strings.Contains(s, id) {
			return true
		}
	}
	return false
}

// removeAndExpectNoTrace removes the pods' manifests and waits until
// kubelet and slipway have removed every trace of them: the CRI lists none
// of their sandboxes or containers, and their mounts, IPs, iptables rules,
// cgroups and logs are gone.
func removeAndExpectNoTrace(ctx context.Context, pods ...*staticPod) {
	GinkgoHelper()
	uids := make([]types.UID, len(pods))
	sandboxes := make([][]string, len(pods))
	for i, p := range pods {
		uids[i] = p.uid(ctx)
		for _, s := range sandboxesOf(ctx, uids[i]) {
			sandboxes[i] = append(sandboxes[i], s.Id)
		}
		Expect(sandboxes[i]).NotTo(BeEmpty())
		before := traceOf(ctx, p, uids[i], sandboxes[i])
		// What the checks look for is there while the pod runs.
		Expect(before.Mounts).NotTo(BeEmpty(), "the pod's namespace mounts")
		Expect(before.IPAllocations).NotTo(BeEmpty(), "the pod's IP")
		Expect(before.PodCgroups).NotTo(BeEmpty(), "the pod's cgroup")
		Expect(before.LogDir).To(BeTrue(), "the pod's log dir")
	}
	for _, p := range pods {
		Expect(os.Remove(p.file)).To(Succeed())
	}
	for i, p := range pods {
		p.remove(ctx)
		Eventually(func() podTrace { return traceOf(ctx, p, uids[i], sandboxes[i]) }).WithTimeout(gcTimeout).WithPolling(time.Second).
			Should(Equal(podTrace{UID: uids[i], Sandboxes: sandboxes[i]}), "pod %s", p.name())
	}
}

// leakyPod exercises what a pod can hold: a shared PID namespace (slipway's
// infra process), a host port, probes, an emptyDir and two containers.
func leakyPod() *corev1.Pod {
	web := corev1.Container{Name: "web", Image: nginxImage,
		Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: hostPort + 1, Protocol: corev1.ProtocolTCP}}}
	web.ReadinessProbe = tcpProbe(80)
	sidecar := shell("sidecar", "exec sleep 3600")
	sidecar.LivenessProbe = execProbe("true")
	sidecar.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	pod := newPod("teardown", web, sidecar)
	share := true
	pod.Spec.ShareProcessNamespace = &share
	pod.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	return pod
}

var _ = Describe("Teardown", func() {
	It("removes every trace of pods whose manifests go: CRI objects, netns and pins, IPs, rules, cgroups, logs", func(ctx context.Context) {
		pods := []*staticPod{runStaticPod(leakyPod()), runStaticPod(probedPod())}
		openProbeGates(ctx, pods[1])
		for _, p := range pods {
			p.waitReady(ctx)
		}
		removeAndExpectNoTrace(ctx, pods...)
	})
})
