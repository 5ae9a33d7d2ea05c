package e2e

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

// slipwayd is a slipwayd process started by the suite, with its own root and
// state under a temporary directory.
type slipwayd struct {
	args   []string
	log    *os.File
	cmd    *exec.Cmd
	root   string
	state  string
	socket string
	// cniConfDir is the suite network's conf dir.
	cniConfDir string
	conn       *grpc.ClientConn
}

// startSlipwayd runs the binary named by $SLIPWAYD_BIN (make e2e builds it)
// and waits until its CRI answers.
// extra flags are added to every start.
func startSlipwayd(ctx context.Context, work, hostsDir, cniConfDir string, extra ...string) *slipwayd {
	bin := os.Getenv("SLIPWAYD_BIN")
	if bin == "" {
		Fail("SLIPWAYD_BIN is not set: run the suites with `make e2e`")
	}
	d := &slipwayd{root: filepath.Join(work, "root"), state: filepath.Join(work, "run"), cniConfDir: cniConfDir}
	d.socket = filepath.Join(d.state, "slipway.sock")
	logFile, err := os.Create(filepath.Join(work, "slipwayd.log"))
	Expect(err).NotTo(HaveOccurred())
	d.log = logFile
	d.args = []string{bin, "--root", d.root, "--state", d.state,
		"--registry-config-path", hostsDir, "--cni-conf-dir", cniConfDir, "--metrics-address", "127.0.0.1:0", "--log-level", "debug"}
	d.args = append(d.args, extra...)
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
// directories, with extra flags if any; the client connection reconnects
// by itself. The extra flags last until the next restart.
func (d *slipwayd) restart(ctx context.Context, extra ...string) {
	GinkgoHelper()
	d.terminate()
	base := d.args
	d.args = append(append([]string{}, base...), extra...)
	d.start()
	d.args = base
	d.waitServing(ctx)
}

// kill ends slipwayd with SIGKILL, as a crash would, and waits until it
// and, when it is embedded, its containerd are gone. Shims and their
// containers keep running.
func (d *slipwayd) kill() {
	GinkgoHelper()
	ctrd := d.containerdPid()
	Expect(d.cmd.Process.Kill()).To(Succeed())
	_ = d.cmd.Wait()
	if ctrd > 0 && d.embedded() {
		Eventually(func() bool { return processAlive(ctrd) }).WithTimeout(30*time.Second).WithPolling(20*time.Millisecond).
			Should(BeFalse(), "the embedded containerd should end with slipwayd")
	}
}

// startAgain starts slipwayd after kill and waits until it serves.
func (d *slipwayd) startAgain(ctx context.Context) {
	GinkgoHelper()
	d.start()
	d.waitServing(ctx)
}

// embedded reports whether slipwayd runs its own containerd.
func (d *slipwayd) embedded() bool {
	for _, a := range d.args {
		if a == "--containerd-address" {
			return false
		}
	}
	return true
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// stop sends SIGTERM, waits for a clean exit and closes the client.
func (d *slipwayd) stop() {
	d.terminate()
	d.conn.Close()
}

// terminate sends SIGTERM and waits for a clean exit, with containerd gone.
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
	if d.embedded() {
		Expect(d.containerdPid()).To(Equal(0), "containerd should stop with slipwayd")
	}
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
