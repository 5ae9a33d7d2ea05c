package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bkclient "github.com/moby/buildkit/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
)

// builderOnly is a second slipwayd in builder-only mode, with clean root
// and state directories of its own, on the suite's test registry.
type builderOnly struct {
	cmd   *exec.Cmd
	state string
	log   string
}

// addr is its builder socket as a client address.
func (b *builderOnly) addr() string { return "unix://" + filepath.Join(b.state, "buildkit.sock") }

// startBuilderOnly starts slipwayd --builder-only and waits until its
// builder answers. The daemon is stopped (and checked to exit cleanly)
// when the spec ends.
func startBuilderOnly(ctx context.Context) *builderOnly {
	work := GinkgoT().TempDir()
	b := &builderOnly{state: filepath.Join(work, "run"), log: filepath.Join(work, "slipwayd.log")}
	logFile, err := os.Create(b.log)
	Expect(err).NotTo(HaveOccurred())
	// The suite's hosts directory sits beside the suite daemon's root.
	hostsDir := filepath.Join(filepath.Dir(daemon.Root), "certs.d")
	b.cmd = exec.Command(os.Getenv("SLIPWAYD_BIN"), "--builder-only", "--root", filepath.Join(work, "root"),
		"--state", b.state, "--registry-config-path", hostsDir, "--metrics-address", "127.0.0.1:0", "--log-level", "debug")
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	Expect(b.cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		b.stop()
		logFile.Close()
		if CurrentSpecReport().Failed() {
			out, _ := os.ReadFile(b.log)
			GinkgoWriter.Printf("builder-only slipwayd log:\n%s\n", harness.Tail(string(out), 60))
		}
	})
	Eventually(func() error {
		c, err := bkclient.New(ctx, b.addr())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.ListWorkers(ctx)
		return err
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return b
}

// stop sends SIGTERM and expects a clean exit that takes containerd along.
func (b *builderOnly) stop() {
	if b.cmd.ProcessState != nil {
		return
	}
	Expect(b.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		Expect(err).NotTo(HaveOccurred(), "builder-only slipwayd should exit 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		Fail("builder-only slipwayd did not exit within 30s of SIGTERM")
	}
	_, err := os.Stat(filepath.Join(b.state, "containerd", "containerd.pid"))
	Expect(os.IsNotExist(err) || err == nil).To(BeTrue())
	_, err = os.Stat(filepath.Join(b.state, "buildkit.sock"))
	Expect(os.IsNotExist(err)).To(BeTrue(), "the builder socket is removed on exit")
}

var _ = Describe("Builder-only mode", func() {
	It("serves the builder on its socket, root only, and no CRI", func(ctx SpecContext) {
		b := startBuilderOnly(ctx)
		st, err := os.Stat(filepath.Join(b.state, "buildkit.sock"))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		_, err = os.Stat(filepath.Join(b.state, "slipway.sock"))
		Expect(os.IsNotExist(err)).To(BeTrue(), "no CRI socket in builder-only mode")

		slipwayBuild(ctx, b.addr(), "--progress=plain", "-t", "slipway-e2e/builder-only:1", corpusContext("heredoc")).succeeded()
	})
})
