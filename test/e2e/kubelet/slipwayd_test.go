package kubelet

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// slipwayd is the suite's slipwayd process, with its own root, state and
// CRI socket under the suite's temporary directory. It is a trimmed copy of
// test/e2e's (a _test.go file of another package cannot be imported).
type slipwayd struct {
	args   []string
	log    *os.File
	cmd    *exec.Cmd
	root   string
	state  string
	socket string
	conn   *grpc.ClientConn
}

// startSlipwayd runs the binary named by $SLIPWAYD_BIN (make e2e-kubelet
// builds it) and waits until its CRI answers.
func startSlipwayd(ctx context.Context, work, hostsDir, cniConfDir string) *slipwayd {
	bin := os.Getenv("SLIPWAYD_BIN")
	if bin == "" {
		Fail("SLIPWAYD_BIN is not set: run the suite with `make e2e-kubelet`")
	}
	d := &slipwayd{root: filepath.Join(work, "root"), state: filepath.Join(work, "run")}
	d.socket = filepath.Join(d.state, "slipway.sock")
	logFile, err := os.Create(filepath.Join(work, "slipwayd.log"))
	Expect(err).NotTo(HaveOccurred())
	d.log = logFile
	d.args = []string{bin, "--root", d.root, "--state", d.state, "--socket", d.socket,
		"--registry-config-path", hostsDir, "--cni-conf-dir", cniConfDir, "--log-level", "debug"}
	d.start()
	DeferCleanup(func() {
		logFile.Close()
		if CurrentSpecReport().Failed() {
			b, _ := os.ReadFile(logFile.Name())
			GinkgoWriter.Printf("slipwayd log:\n%s\n", tail(string(b), 80))
		}
	})
	d.conn, err = grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	Expect(err).NotTo(HaveOccurred())
	d.waitServing(ctx)
	return d
}

func (d *slipwayd) start() {
	GinkgoHelper()
	d.cmd = exec.Command(d.args[0], d.args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	Expect(d.cmd.Start()).To(Succeed())
}

func (d *slipwayd) waitServing(ctx context.Context) {
	GinkgoHelper()
	client := runtimeapi.NewRuntimeServiceClient(d.conn)
	Eventually(func() error {
		_, err := client.Version(ctx, &runtimeapi.VersionRequest{})
		return err
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// restart stops slipwayd with SIGTERM and starts it again on the same
// directories; the client connections (the suite's and kubelet's)
// reconnect by themselves.
func (d *slipwayd) restart(ctx context.Context) {
	GinkgoHelper()
	d.terminate()
	d.start()
	d.waitServing(ctx)
}

// stop sends SIGTERM, waits for a clean exit and closes the client.
func (d *slipwayd) stop() {
	d.terminate()
	d.conn.Close()
}

// terminate sends SIGTERM and waits for a clean exit, with the embedded
// containerd gone.
func (d *slipwayd) terminate() {
	GinkgoHelper()
	Expect(d.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		Expect(err).NotTo(HaveOccurred(), "slipwayd should exit 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		Fail("slipwayd did not exit within 30s of SIGTERM")
	}
	Expect(d.containerdPid()).To(Equal(0), "containerd should stop with slipwayd")
}

// containerdPid is the embedded containerd's pid from its pid file, or 0.
func (d *slipwayd) containerdPid() int {
	b, err := os.ReadFile(filepath.Join(d.state, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
