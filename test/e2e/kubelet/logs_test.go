package kubelet

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

// criLogLine is one line of the CRI log format: an RFC 3339 timestamp with
// nanoseconds, the stream, F (full) or P (partial), the text.
var criLogLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$`)

// podLogDir is kubelet's log directory of the pod: /var/log/pods/NS_NAME_UID.
func podLogDir(ctx context.Context, p *staticPod) string {
	GinkgoHelper()
	return filepath.Join(podLogsRoot, podNamespace+"_"+p.name()+"_"+string(p.uid(ctx)))
}

// criLog reads and parses a CRI log file into "stream text" lines.
func criLog(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := criLogLine.FindStringSubmatch(line)
		Expect(m).NotTo(BeNil(), "%s: not CRI format: %q", path, line)
		Expect(m[4]).To(Equal("F"), "%s: %q", path, line)
		out = append(out, m[3]+" "+m[5])
	}
	return out, nil
}

var _ = Describe("Container logs", func() {
	It("land in /var/log/pods in CRI format, one file per attempt, and kubelet's /containerLogs serves them", func(ctx context.Context) {
		// First attempt: three lines on each stream, then exit 1; the
		// second attempt (OnFailure) logs and stays up.
		talker := shell("talker", `if [ ! -e /shared/ran ]; then touch /shared/ran
for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; exit 1; fi
echo "second attempt"; exec sleep 3600`)
		talker.VolumeMounts = []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
		pod := newPod("logs", talker)
		pod.Spec.Volumes = []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		p := runStaticPod(pod)
		p.waitFor(ctx, "restarted once and running", func(g Gomega, pod *corev1.Pod) {
			s := containerStatus(pod, "talker")
			g.Expect(s).NotTo(BeNil())
			g.Expect(s.RestartCount).To(Equal(int32(1)))
			g.Expect(s.State.Running).NotTo(BeNil())
		})

		dir := filepath.Join(podLogDir(ctx, p), "talker")
		Expect(criLog(filepath.Join(dir, "0.log"))).To(ConsistOf(
			"stdout out 1", "stdout out 2", "stdout out 3", "stderr err 1", "stderr err 2", "stderr err 3"))
		// Each stream's lines keep their order.
		first, err := criLog(filepath.Join(dir, "0.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(filterPrefix(first, "stdout")).To(Equal([]string{"stdout out 1", "stdout out 2", "stdout out 3"}))
		Eventually(func() ([]string, error) { return criLog(filepath.Join(dir, "1.log")) }).WithTimeout(podTimeout).WithPolling(poll).
			Should(Equal([]string{"stdout second attempt"}))

		Expect(node.containerLogs(ctx, p, "talker", "")).To(Equal("second attempt\n"))
		previous := node.containerLogs(ctx, p, "talker", "previous=true")
		Expect(strings.Split(strings.TrimSuffix(previous, "\n"), "\n")).To(ConsistOf(
			"out 1", "out 2", "out 3", "err 1", "err 2", "err 3"))
		Expect(node.containerLogs(ctx, p, "talker", "previous=true&timestamps=true")).To(MatchRegexp(`(?m)^\d{4}-\d\d-\d\dT\S+ out 1$`))

		// kubelet links each attempt's log under /var/log/containers.
		links, err := filepath.Glob(filepath.Join(containerLogsRoot, p.name()+"_"+podNamespace+"_talker-*.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(links).NotTo(BeEmpty())
	})
})

// filterPrefix keeps the lines that start with prefix.
func filterPrefix(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
