package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var podSeq atomic.Int64

// Bounds on waiting for kubelet: pulls, probes every second and a sync loop
// that reacts to a manifest within its 1 s file check.
const (
	podTimeout = 2 * time.Minute
	poll       = 250 * time.Millisecond
)

// newPod is a pod manifest with a unique name in the suite's namespace,
// with a short termination grace period (busybox's sleep as PID 1 ignores
// SIGTERM) and images pulled only if not present.
func newPod(prefix string, containers ...corev1.Container) *corev1.Pod {
	grace := int64(2)
	for i := range containers {
		containers[i].ImagePullPolicy = corev1.PullIfNotPresent
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, podSeq.Add(1)), Namespace: podNamespace},
		Spec: corev1.PodSpec{
			Containers:                    containers,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

// shell is a busybox container running sh -c script.
func shell(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: busyboxImage, Command: []string{"sh", "-c", script}}
}

// staticPod is a pod run from a manifest in kubelet's static pod directory.
type staticPod struct {
	manifest *corev1.Pod
	file     string
}

// runStaticPod writes pod's manifest and registers its removal, which waits
// until kubelet has torn the pod down (see remove).
func runStaticPod(pod *corev1.Pod) *staticPod {
	GinkgoHelper()
	p := &staticPod{manifest: pod, file: filepath.Join(node.manifestDir, pod.Name+".json")}
	b, err := json.Marshal(pod)
	Expect(err).NotTo(HaveOccurred())
	// Write then rename, so kubelet never reads half a manifest. The
	// temporary name starts with a dot because kubelet reads every other
	// file in the directory as a pod, and a static pod's UID hashes its
	// file's path: a visible temporary file made a second pod of the same
	// name with another UID, whose containers kubelet then killed.
	tmp := filepath.Join(node.manifestDir, "."+pod.Name+".json.tmp")
	Expect(os.WriteFile(tmp, b, 0o644)).To(Succeed())
	Expect(os.Rename(tmp, p.file)).To(Succeed())
	DeferCleanup(p.remove)
	return p
}

// name is the pod's name in kubelet: a static pod's name gets the node's.
func (p *staticPod) name() string { return p.manifest.Name + "-" + nodeName }

// status is kubelet's view of the pod (from /pods), or nil when kubelet
// does not have it.
func (p *staticPod) status(ctx context.Context) (*corev1.Pod, error) {
	body, err := node.get(ctx, "/pods")
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, err
	}
	var found *corev1.Pod
	for i := range list.Items {
		if list.Items[i].Name != p.name() || list.Items[i].Namespace != podNamespace {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("kubelet has two pods named %s (UIDs %s and %s)", p.name(), found.UID, list.Items[i].UID)
		}
		found = &list.Items[i]
	}
	return found, nil
}

// uid is the UID kubelet gave the pod (a hash of its manifest).
func (p *staticPod) uid(ctx context.Context) types.UID {
	GinkgoHelper()
	var uid types.UID
	Eventually(func(g Gomega) {
		pod, err := p.status(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod).NotTo(BeNil(), "kubelet has no pod %s", p.name())
		uid = pod.UID
	}).WithTimeout(podTimeout).WithPolling(poll).Should(Succeed())
	return uid
}

// waitFor polls kubelet's view of the pod until check passes and returns
// that view.
func (p *staticPod) waitFor(ctx context.Context, what string, check func(g Gomega, pod *corev1.Pod)) *corev1.Pod {
	GinkgoHelper()
	var last *corev1.Pod
	Eventually(func(g Gomega) {
		pod, err := p.status(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod).NotTo(BeNil(), "kubelet has no pod %s", p.name())
		last = pod
		check(g, pod)
	}).WithTimeout(podTimeout).WithPolling(poll).Should(Succeed(), "pod %s: %s", p.name(), what)
	return last
}

// waitReady waits until kubelet reports the pod Ready (every container
// started and passing its readiness probe).
func (p *staticPod) waitReady(ctx context.Context) *corev1.Pod {
	GinkgoHelper()
	return p.waitFor(ctx, "Ready", func(g Gomega, pod *corev1.Pod) {
		g.Expect(podCondition(pod, corev1.PodReady)).To(Equal(corev1.ConditionTrue), "conditions: %+v", pod.Status.Conditions)
	})
}

// podCondition is the status of the pod's condition of type t, or "".
func podCondition(pod *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// containerStatus is kubelet's status of the named container (init or
// app), or nil.
func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// remove deletes the manifest and waits until kubelet no longer has the pod
// and the CRI holds no ready sandbox or running container of it. Removing
// the sandboxes and exited containers is left to kubelet's garbage
// collector (once a minute; see the teardown spec) or the suite's end.
func (p *staticPod) remove(ctx context.Context) {
	GinkgoHelper()
	running, err := p.status(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.Remove(p.file)).To(Or(Succeed(), MatchError(os.ErrNotExist)))
	Eventually(func(g Gomega) {
		pod, err := p.status(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pod).To(BeNil(), "kubelet still has the pod")
		if running == nil {
			return
		}
		for _, s := range sandboxesOf(ctx, running.UID) {
			g.Expect(s.State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_NOTREADY), "sandbox %s", s.Id)
		}
		for _, c := range containersOf(ctx, running.UID) {
			g.Expect(c.State).NotTo(Equal(runtimeapi.ContainerState_CONTAINER_RUNNING), "container %s", c.Metadata.Name)
		}
	}).WithTimeout(podTimeout).WithPolling(poll).Should(Succeed(), "pod %s not torn down", p.name())
}
