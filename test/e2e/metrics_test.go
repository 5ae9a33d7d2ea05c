package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// metricsLogLine is the line slipwayd logs once its metrics listener
// listens, with the address it got.
var metricsLogLine = regexp.MustCompile(`msg="serving metrics[^"]*" address="([^"]+)"`)

// metricsAddress is the metrics listener's address in slipwayd's log at
// path: the last one logged (a restart logs a new one).
func metricsAddress(path string) string {
	GinkgoHelper()
	var addr string
	Eventually(func() string {
		b, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		for _, m := range metricsLogLine.FindAllStringSubmatch(string(b), -1) {
			addr = m[1]
		}
		return addr
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).ShouldNot(BeEmpty(), "no metrics address in %s", path)
	return addr
}

// httpGet fetches url from a loopback listener: its status and body.
func httpGet(ctx context.Context, url string) (int, string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred(), "GET %s", url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}

// scrape reads /metrics at addr in the text format: each series (its name
// and labels as written, `name{a="x",b="y"}`) and its value.
func scrape(ctx context.Context, addr string) map[string]float64 {
	GinkgoHelper()
	code, body := httpGet(ctx, "http://"+addr+"/metrics")
	Expect(code).To(Equal(http.StatusOK), "/metrics: %s", body)
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		Expect(i).To(BeNumerically(">", 0), "metrics line %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		Expect(err).NotTo(HaveOccurred(), "metrics line %q", line)
		series[line[:i]] = v
	}
	return series
}

// listenersOnPort are the addresses process pid listens on at port, from
// its network namespace's /proc/PID/net/tcp{,6}.
func listenersOnPort(pid, port int) []string {
	GinkgoHelper()
	var out []string
	for _, l := range tcpListeners(pid) {
		if l.Port == port {
			out = append(out, l.String())
		}
	}
	return out
}

// getInNetns GETs path from addr inside the network namespace of process
// pid: its status and body. The socket is made on a thread that joined the
// namespace (and ends with its goroutine, never to serve another).
func getInNetns(pid int, addr, path string) (int, string) {
	GinkgoHelper()
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		res := result{}
		defer func() { done <- res }()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			res.err = err
			return
		}
		defer ns.Close()
		if res.err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); res.err != nil {
			return
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, res.err = fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); res.err != nil {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			res.err = err
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res.status, res.body, res.err = resp.StatusCode, string(b), err
	}()
	r := <-done
	Expect(r.err).NotTo(HaveOccurred(), "GET %s%s in the namespace of %d", addr, path, pid)
	return r.status, r.body
}

var _ = Describe("Metrics", func() {
	It("count CRI calls, pod start-up, pulls, builds and states, and answer /healthz and /readyz", func(ctx SpecContext) {
		addr := metricsAddress(daemon.Log.Name())
		before := scrape(ctx, addr)
		delta := func(after map[string]float64, series string) float64 { return after[series] - before[series] }

		code, body := httpGet(ctx, "http://"+addr+"/healthz")
		Expect(code).To(Equal(http.StatusOK), body)
		code, body = httpGet(ctx, "http://"+addr+"/readyz")
		Expect(code).To(Equal(http.StatusOK), "/readyz of the suite daemon: %s", body)

		// A pull that fetches: test-image-3 has a layer of its own.
		const image = "gcr.io/k8s-staging-cri-tools/test-image-3:latest"
		removeImage(ctx, image)
		id := pullImage(ctx, image, nil)
		DeferCleanup(removeImage, context.Background(), id)

		// A pod whose first container starts, and a call that fails.
		pod := runTestPod(ctx, "metrics")
		runContainer(ctx, pod, containerConfig("sleeper", "sleep 600"))
		_, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "no-such-container-metrics"})
		Expect(err).To(HaveOccurred())

		// A build, and the same build again: its steps come from the cache.
		dir := corpusContext("heredoc")
		const tag = "docker.io/slipway-e2e/metrics:1"
		slipwayBuild(ctx, builderAddr(), "--progress=plain", "-t", tag, dir).succeeded()
		slipwayBuild(ctx, builderAddr(), "--progress=plain", "-t", tag, dir).succeeded()
		DeferCleanup(removeImage, context.Background(), tag)

		// BuildKit records a build's metrics as it files its history
		// record, which may trail the client's return.
		var after map[string]float64
		Eventually(func() float64 {
			after = scrape(ctx, addr)
			return delta(after, `slipway_builds_total{status="success"}`)
		}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(BeNumerically(">=", 2))

		for series, what := range map[string]string{
			`slipway_cri_request_duration_seconds_count{code="OK",method="RunPodSandbox"}`:  "RunPodSandbox latency",
			`slipway_cri_request_duration_seconds_count{code="OK",method="StartContainer"}`: "StartContainer latency",
			`slipway_cri_request_duration_seconds_count{code="OK",method="PullImage"}`:      "PullImage latency",
			`slipway_cri_request_errors_total{code="NotFound",method="ContainerStatus"}`:    "ContainerStatus NotFound errors",
			`slipway_pod_startup_duration_seconds_count`:                                    "pod start-ups",
			`slipway_image_pull_duration_seconds_count`:                                     "image pulls",
			`slipway_image_pull_bytes_total`:                                                "pulled bytes",
			`slipway_build_duration_seconds_count{status="success"}`:                        "build durations",
			`slipway_build_steps_total`:                                                     "build steps",
			`slipway_build_cache_hits_total`:                                                "build cache hits",
		} {
			Expect(delta(after, series)).To(BeNumerically(">", 0), "%s (%s) did not grow", what, series)
		}
		Expect(after[`slipway_pod_startup_duration_seconds_sum`]).To(BeNumerically(">", before[`slipway_pod_startup_duration_seconds_sum`]))
		// The pod's only container was its first: one start-up.
		Expect(delta(after, `slipway_pod_startup_duration_seconds_count`)).To(Equal(1.0))
		Expect(after).To(HaveKey(`slipway_containerd_restarts_total`))
		Expect(after).To(HaveKey(`slipway_container_oom_kills_total`))
		Expect(after).To(HaveKey("go_goroutines"))
		Expect(after).To(HaveKey("process_resident_memory_bytes"))

		// The state gauges count the index, as ListPodSandbox and
		// ListContainers do.
		pods, err := runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		Expect(err).NotTo(HaveOccurred())
		ready := 0
		for _, p := range pods.Items {
			if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		containers, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		Expect(err).NotTo(HaveOccurred())
		running := 0
		for _, c := range containers.Containers {
			if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				running++
			}
		}
		states := scrape(ctx, addr)
		Expect(ready).To(BeNumerically(">=", 1))
		Expect(states[`slipway_pods{state="ready"}`]).To(Equal(float64(ready)))
		Expect(states[`slipway_pods{state="ready"}`] + states[`slipway_pods{state="notready"}`]).To(Equal(float64(len(pods.Items))))
		Expect(states[`slipway_containers{state="running"}`]).To(Equal(float64(running)))

		// The suite daemon's listener (127.0.0.1:0) is bound to loopback.
		_, portText, err := net.SplitHostPort(addr)
		Expect(err).NotTo(HaveOccurred())
		port, err := strconv.Atoi(portText)
		Expect(err).NotTo(HaveOccurred())
		Expect(listenersOnPort(daemon.Cmd.Process.Pid, port)).To(Equal([]string{addr}))
	})

	It("count OOM kills and restarts of the embedded containerd", func(ctx SpecContext) {
		addr := metricsAddress(daemon.Log.Name())
		before := scrape(ctx, addr)

		pod := runTestPod(ctx, "metrics-oom")
		config := containerConfig("hog", "tail /dev/zero")
		config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
		Expect(waitExited(ctx, runContainer(ctx, pod, config)).Reason).To(Equal("OOMKilled"))
		// The monitor counts the kill just after it records the exit.
		Eventually(func() float64 {
			return scrape(ctx, addr)[`slipway_container_oom_kills_total`] - before[`slipway_container_oom_kills_total`]
		}).WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(1.0))

		pid := daemon.ContainerdPid()
		Expect(pid).To(BeNumerically(">", 0))
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		// The restart is counted before the new containerd's pid is written.
		Eventually(daemon.ContainerdPid).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).ShouldNot(Or(Equal(pid), BeZero()))
		Expect(scrape(ctx, addr)[`slipway_containerd_restarts_total`] - before[`slipway_containerd_restarts_total`]).To(Equal(1.0))
		Eventually(runtimeReady).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
		// /readyz follows containerd back.
		Eventually(func() int {
			code, _ := httpGet(ctx, "http://"+addr+"/readyz")
			return code
		}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(http.StatusOK))
	})

	It("listen on 127.0.0.1:9898 only by default, never on every interface", func(ctx SpecContext) {
		// A builder-only slipwayd with the default metrics address, in a
		// network namespace of its own: the default port cannot collide
		// with another daemon on this host, and nothing here reaches
		// beyond loopback.
		work := GinkgoT().TempDir()
		logPath := filepath.Join(work, "slipwayd.log")
		logFile, err := os.Create(logPath)
		Expect(err).NotTo(HaveOccurred())
		hostsDir := filepath.Join(filepath.Dir(daemon.Root), "certs.d")
		cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
			os.Getenv("SLIPWAYD_BIN"), "--builder-only", "--root", filepath.Join(work, "root"), "--state", filepath.Join(work, "run"),
			"--registry-config-path", hostsDir, "--log-level", "debug")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		Expect(cmd.Start()).To(Succeed())
		DeferCleanup(func() {
			defer logFile.Close()
			if CurrentSpecReport().Failed() {
				b, _ := os.ReadFile(logPath)
				GinkgoWriter.Printf("default-address slipwayd log:\n%s\n", harness.Tail(string(b), 60))
			}
			if cmd.ProcessState != nil {
				return
			}
			Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				Expect(err).NotTo(HaveOccurred(), "slipwayd should exit 0 on SIGTERM")
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				Fail("slipwayd did not exit within 30s of SIGTERM")
			}
		})

		Expect(metricsAddress(logPath)).To(Equal("127.0.0.1:9898"))
		pid := cmd.Process.Pid // sh exec'd slipwayd
		Expect(listenersOnPort(pid, 9898)).To(Equal([]string{"127.0.0.1:9898"}),
			"the default metrics address binds 127.0.0.1 only, not 0.0.0.0 or ::")

		// It answers there, inside its namespace; ready once its containerd
		// answers (builder-only: no pod network to wait for).
		status, body := getInNetns(pid, "127.0.0.1:9898", "/healthz")
		Expect(status).To(Equal(http.StatusOK), body)
		Eventually(func() int {
			status, body = getInNetns(pid, "127.0.0.1:9898", "/readyz")
			return status
		}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Equal(http.StatusOK), func() string { return body })
	})
})
