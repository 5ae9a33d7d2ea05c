package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
)

// Where the suite's kubelet serves its API: loopback only, the standard
// port, anonymous and AlwaysAllow (as the issue asks; nothing off the host
// can reach it).
const (
	kubeletAddr = "127.0.0.1:10250"
	// nodeName is kubelet's --hostname-override: static pods are named
	// NAME-kubelet-e2e.
	nodeName = "kubelet-e2e"
	// podNamespace is the namespace of every static pod of the suite; the
	// suite's /var/log/pods and /var/log/containers entries carry it.
	podNamespace = "kubelet-e2e"
)

// kubelet is the suite's kubelet process, standalone (no kubeconfig, no API
// server), with its root and cert dirs, static pod dir and log under the
// suite's temporary directory.
type kubelet struct {
	cmd         *exec.Cmd
	exited      chan struct{} // closed when cmd has been waited for
	logPath     string
	manifestDir string
	client      *http.Client
}

// startKubelet runs $KUBELET_BIN (default /usr/local/bin/kubelet, installed
// by `make deps`) on the slipwayd CRI socket and waits until its API answers.
// host is the node preparation done for it (cgroup root).
func startKubelet(ctx context.Context, work, criSocket string, host *nodeHost) *kubelet {
	GinkgoHelper()
	bin := os.Getenv("KUBELET_BIN")
	if bin == "" {
		bin = "/usr/local/bin/kubelet"
	}
	if _, err := os.Stat(bin); err != nil {
		Fail(fmt.Sprintf("kubelet is not installed at %s: run `make deps` (it builds kubelet v1.37.2)", bin))
	}
	// Another kubelet on the port would answer for ours: refuse to start.
	l, err := net.Listen("tcp", kubeletAddr)
	Expect(err).NotTo(HaveOccurred(), "%s is taken: is another kubelet running?", kubeletAddr)
	Expect(l.Close()).To(Succeed())

	dir := filepath.Join(work, "kubelet")
	k := &kubelet{
		exited:      make(chan struct{}),
		logPath:     filepath.Join(dir, "kubelet.log"),
		manifestDir: filepath.Join(dir, "manifests"),
		client: &http.Client{
			Timeout: 30 * time.Second,
			// kubelet's serving certificate is self-signed (in --cert-dir).
			Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		},
	}
	Expect(os.MkdirAll(k.manifestDir, 0o755)).To(Succeed())
	configPath := filepath.Join(dir, "config.yaml")
	Expect(os.WriteFile(configPath, []byte(kubeletConfig(k.manifestDir, criSocket, host.cgroupRoot)), 0o644)).To(Succeed())

	logFile, err := os.Create(k.logPath)
	Expect(err).NotTo(HaveOccurred())
	k.cmd = exec.Command(bin, "--config", configPath,
		"--root-dir", filepath.Join(dir, "root"), "--cert-dir", filepath.Join(dir, "pki"),
		"--hostname-override", nodeName, "--v", "2")
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	Expect(k.cmd.Start()).To(Succeed())
	go func() {
		_ = k.cmd.Wait()
		logFile.Close()
		close(k.exited)
	}()
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			b, _ := os.ReadFile(k.logPath)
			GinkgoWriter.Printf("kubelet log:\n%s\n", harness.Tail(string(b), 120))
		}
	})

	Eventually(func(g Gomega) {
		select {
		case <-k.exited:
			b, _ := os.ReadFile(k.logPath)
			StopTrying("kubelet exited:\n" + harness.Tail(string(b), 40)).Now()
		default:
		}
		body, err := k.get(ctx, "/healthz")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(body).To(Equal("ok"))
	}).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	return k
}

// kubeletConfig is the suite's KubeletConfiguration. Beyond what the issue
// asks (static pods, anonymous + AlwaysAllow on 127.0.0.1:10250, cgroupfs,
// no swap or cgroup v1 refusal, the slipwayd socket), it keeps kubelet off
// the node's shared state: no iptables chains, its QoS cgroups under a
// cgroup root of its own, no read-only or healthz port, and eviction and
// image GC thresholds that a busy shared disk does not reach.
func kubeletConfig(manifestDir, criSocket, cgroupRoot string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %q
fileCheckFrequency: 1s
syncFrequency: 10s
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: %q
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: %q
imageServiceEndpoint: %q
makeIPTablesUtilChains: false
oomScoreAdj: 0
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
`, manifestDir, cgroupRoot, "unix://"+criSocket, "unix://"+criSocket)
}

// get GETs path from kubelet's API and returns the body; a status other
// than 200 is an error carrying the body.
func (k *kubelet) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+kubeletAddr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

// stop ends kubelet with SIGTERM (SIGKILL after 30 s) and waits for it.
// Containers it started keep running, as on a real node.
func (k *kubelet) stop() {
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(30 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.exited
	}
}
