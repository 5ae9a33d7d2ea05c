package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/runtime/embedded"
	"github.com/slipway-dev/slipway/test/e2e/harness"
)

// containerd's own CRI deletes, at every start, the sandbox records in
// k8s.io it did not make: slipway's pods and exit guards. slipwayd refuses
// such a containerd rather than lose its pods at the next restart.
var _ = Describe("A containerd whose own CRI plugin is on", func() {
	It("is refused by slipwayd with an error naming the plugin, and slipwayd leaves nothing in it", func(ctx context.Context) {
		work, err := os.MkdirTemp("", "slipway-shared-cri-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, work)
		DeferCleanup(harness.UnmountUnder, work)
		cfg := embedded.Config{Root: filepath.Join(work, "containerd-root"), State: filepath.Join(work, "containerd-state")}
		Expect(os.MkdirAll(cfg.State, 0o711)).To(Succeed())
		// containerd's defaults (CRI on), but NRI off and its CNI config
		// in a dir of the spec's own.
		Expect(os.WriteFile(cfg.ConfigPath(), fmt.Appendf(nil, `version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = %q
[plugins."io.containerd.cri.v1.runtime".cni]
  conf_dir = %q
`, cfg.Root, cfg.State, cfg.Address(), filepath.Join(work, "cni")), 0o600)).To(Succeed())
		logFile, err := os.Create(cfg.LogPath())
		Expect(err).NotTo(HaveOccurred())
		defer logFile.Close()
		ctrd := exec.Command("containerd", "--config", cfg.ConfigPath())
		ctrd.Stdout, ctrd.Stderr = logFile, logFile
		ctrd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		waited, err := embedded.StartTied(ctrd)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			_ = ctrd.Process.Signal(syscall.SIGTERM)
			<-waited
		})
		Eventually(func() error { return embedded.Ping(ctx, cfg.Address()) }).
			WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())

		bin := os.Getenv("SLIPWAYD_BIN")
		Expect(bin).NotTo(BeEmpty(), "SLIPWAYD_BIN")
		run := filepath.Join(work, "run")
		out, err := exec.CommandContext(ctx, bin, "--root", filepath.Join(work, "root"), "--state", run,
			"--containerd-address", cfg.Address(), "--cni-conf-dir", filepath.Join(work, "slipway-cni"),
			"--metrics-address", "", "--nri=false", "--builder=false").CombinedOutput()
		var exitErr *exec.ExitError
		Expect(err).To(BeAssignableToTypeOf(exitErr), "slipwayd must exit with an error; output:\n%s", out)
		Expect(string(out)).To(ContainSubstring("io.containerd.grpc.v1.cri"))
		Expect(string(out)).To(ContainSubstring(cfg.Address()))
		Expect(filepath.Join(run, "slipway.sock")).NotTo(BeAnExistingFile(), "no CRI socket is left behind")
	})
})
