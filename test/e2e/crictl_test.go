package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// crictl runs crictl against the suite's slipwayd and returns its stdout.
func crictl(ctx context.Context, args ...string) string {
	GinkgoHelper()
	args = append([]string{"--runtime-endpoint", "unix://" + daemon.Socket, "--image-endpoint", "unix://" + daemon.Socket}, args...)
	out, err := exec.CommandContext(ctx, "crictl", args...).Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	Expect(err).NotTo(HaveOccurred(), "crictl %v: %s", args, stderr)
	return string(out)
}

var _ = Describe("crictl against slipwayd", func() {

	BeforeEach(func() {
		if _, err := exec.LookPath("crictl"); err != nil {
			Fail("crictl is not installed: run make deps")
		}
	})

	It("reports version and info", func(ctx context.Context) {
		Expect(crictl(ctx, "version")).To(ContainSubstring("RuntimeName:  slipway"))
		var info struct {
			Status struct {
				Conditions []struct {
					Type   string `json:"type"`
					Status bool   `json:"status"`
				} `json:"conditions"`
			} `json:"status"`
			Config map[string]any `json:"config"`
		}
		Expect(json.Unmarshal([]byte(crictl(ctx, "info")), &info)).To(Succeed())
		Expect(info.Status.Conditions).To(ContainElement(And(HaveField("Type", "RuntimeReady"), HaveField("Status", true))))
		Expect(info.Config).To(HaveKey("cri"))
	})

	It("pulls, lists, inspects and removes images, and shows image fs info", func(ctx context.Context) {
		image := "gcr.io/k8s-staging-cri-tools/test-image-tag:test"
		Expect(crictl(ctx, "pull", image)).To(ContainSubstring("Image is up to date for sha256:"))
		Expect(crictl(ctx, "images")).To(MatchRegexp(`gcr.io/k8s-staging-cri-tools/test-image-tag\s+test\s+[0-9a-f]{13}`))

		var inspect struct {
			Status struct {
				ID       string   `json:"id"`
				RepoTags []string `json:"repoTags"`
			} `json:"status"`
			Info map[string]any `json:"info"`
		}
		Expect(json.Unmarshal([]byte(crictl(ctx, "inspecti", image)), &inspect)).To(Succeed())
		Expect(inspect.Status.RepoTags).To(Equal([]string{image}))
		Expect(inspect.Info).To(HaveKey("imageSpec"))

		Expect(crictl(ctx, "imagefsinfo")).To(ContainSubstring("usedBytes"))
		Expect(crictl(ctx, "rmi", image)).To(ContainSubstring("Deleted: " + image))
		Expect(crictl(ctx, "images", "-q")).NotTo(ContainSubstring(inspect.Status.ID))
	})

	It("runs, lists, inspects, stats, stops and removes pods", func(ctx context.Context) {
		config := filepath.Join(GinkgoT().TempDir(), "pod.json")
		Expect(os.WriteFile(config, []byte(`{
  "metadata": {"name": "crictl-pod", "namespace": "e2e", "uid": "crictl-uid", "attempt": 1},
  "hostname": "crictl-pod",
  "labels": {"app": "crictl"},
  "linux": {"cgroup_parent": "/slipway-e2e-crictl", "security_context": {"namespace_options": {"pid": 0}}}
}`), 0o644)).To(Succeed())
		DeferCleanup(removeCgroupTree, "/slipway-e2e-crictl")
		id := strings.TrimSpace(crictl(ctx, "runp", config))
		Expect(id).To(MatchRegexp("^[0-9a-f]{64}$"))
		DeferCleanup(func(ctx context.Context) { removePod(ctx, id) })

		Expect(crictl(ctx, "pods", "--label", "app=crictl")).To(MatchRegexp(id[:13] + `\s.*Ready\s+crictl-pod\s+e2e\s+1`))
		var inspect struct {
			Status struct {
				State   string `json:"state"`
				Network struct {
					IP string `json:"ip"`
				} `json:"network"`
			} `json:"status"`
			Info map[string]any `json:"info"`
		}
		Expect(json.Unmarshal([]byte(crictl(ctx, "inspectp", id)), &inspect)).To(Succeed())
		Expect(inspect.Status.State).To(Equal("SANDBOX_READY"))
		Expect(inspect.Status.Network.IP).To(HavePrefix("10.252.0."))
		Expect(crictl(ctx, "statsp", "--id", id)).To(ContainSubstring("crictl-pod"))

		Expect(crictl(ctx, "stopp", id)).To(ContainSubstring("Stopped sandbox " + id))
		Expect(crictl(ctx, "pods", "--id", id, "--state", "NotReady", "-q")).To(ContainSubstring(id))
		Expect(crictl(ctx, "rmp", id)).To(ContainSubstring("Removed sandbox " + id))
		Expect(crictl(ctx, "pods", "-q")).NotTo(ContainSubstring(id))
	})
})

var _ = Describe("crictl with containers", func() {
	It("creates, starts, lists, inspects, logs, stats, updates, stops and removes a container", func(ctx context.Context) {
		dir := GinkgoT().TempDir()
		podJSON := filepath.Join(dir, "pod.json")
		ctrJSON := filepath.Join(dir, "ctr.json")
		Expect(os.WriteFile(podJSON, []byte(`{
  "metadata": {"name": "crictl-ctr-pod", "namespace": "e2e", "uid": "crictl-ctr-uid"},
  "log_directory": "`+dir+`/logs",
  "linux": {}
}`), 0o644)).To(Succeed())
		Expect(os.WriteFile(ctrJSON, []byte(`{
  "metadata": {"name": "web"},
  "image": {"image": "`+busyboxImage+`"},
  "command": ["sh", "-c", "echo hello-from-crictl; sleep 1000"],
  "log_path": "web.log",
  "linux": {}
}`), 0o644)).To(Succeed())
		pullImage(ctx, busyboxImage, nil)
		podID := strings.TrimSpace(crictl(ctx, "runp", podJSON))
		DeferCleanup(func(ctx context.Context) { removePod(ctx, podID) })

		id := strings.TrimSpace(crictl(ctx, "create", podID, ctrJSON, podJSON))
		Expect(id).To(MatchRegexp("^[0-9a-f]{64}$"))
		Expect(crictl(ctx, "ps", "-a", "--id", id)).To(ContainSubstring("Created"))
		Expect(strings.TrimSpace(crictl(ctx, "start", id))).To(Equal(id))
		Expect(crictl(ctx, "ps", "--pod", podID)).To(MatchRegexp(id[:13] + `.*Running\s+web`))
		Eventually(func() string { return crictl(ctx, "logs", id) }).Should(ContainSubstring("hello-from-crictl"))

		var inspect struct {
			Status struct {
				State   string `json:"state"`
				LogPath string `json:"logPath"`
			} `json:"status"`
		}
		Expect(json.Unmarshal([]byte(crictl(ctx, "inspect", id)), &inspect)).To(Succeed())
		Expect(inspect.Status.State).To(Equal("CONTAINER_RUNNING"))
		Expect(inspect.Status.LogPath).To(Equal(dir + "/logs/web.log"))
		Expect(crictl(ctx, "stats", "--id", id)).To(ContainSubstring(id[:13]))
		crictl(ctx, "update", "--memory", "67108864", id)
		Expect(crictl(ctx, "inspect", id)).To(ContainSubstring(`"memoryLimitInBytes": "67108864"`))

		Expect(strings.TrimSpace(crictl(ctx, "stop", "--timeout", "1", id))).To(Equal(id))
		Expect(crictl(ctx, "ps", "-a", "--id", id)).To(ContainSubstring("Exited"))
		Expect(strings.TrimSpace(crictl(ctx, "rm", id))).To(Equal(id))
		Expect(crictl(ctx, "ps", "-a", "-q")).NotTo(ContainSubstring(id))
	})
})
