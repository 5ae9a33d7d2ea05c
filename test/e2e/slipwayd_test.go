package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
)

// slipwayd is a slipwayd process started by the suite (harness.Daemon),
// with its own root and state under a temporary directory.
type slipwayd struct {
	*harness.Daemon
	// cniConfDir is the suite network's conf dir.
	cniConfDir string
}

// startSlipwayd runs the binary named by $SLIPWAYD_BIN (make e2e builds it)
// and waits until its CRI answers.
// extra flags are added to every start.
func startSlipwayd(ctx context.Context, work, hostsDir, cniConfDir string, extra ...string) *slipwayd {
	daemon, err := harness.NewDaemon(work, hostsDir, cniConfDir, extra...)
	Expect(err).NotTo(HaveOccurred())
	d := &slipwayd{Daemon: daemon, cniConfDir: cniConfDir}
	d.start()
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			GinkgoWriter.Printf("slipwayd log:\n%s\n", d.LogTail(80))
		}
		d.Log.Close()
	})
	d.waitServing(ctx)
	return d
}

func (d *slipwayd) start() {
	GinkgoHelper()
	Expect(d.Start()).To(Succeed())
}

func (d *slipwayd) waitServing(ctx context.Context) {
	GinkgoHelper()
	Expect(d.WaitServing(ctx)).To(Succeed())
}

// restart stops slipwayd with SIGTERM and starts it again on the same
// directories, with extra flags if any; the client connection reconnects
// by itself. The extra flags last until the next restart.
func (d *slipwayd) restart(ctx context.Context, extra ...string) {
	GinkgoHelper()
	d.terminate()
	base := d.Args
	d.Args = append(append([]string{}, base...), extra...)
	d.start()
	d.Args = base
	d.waitServing(ctx)
}

// kill ends slipwayd with SIGKILL, as a crash would, and waits until it
// and, when it is embedded, its containerd are gone. Shims and their
// containers keep running.
func (d *slipwayd) kill() {
	GinkgoHelper()
	ctrd := d.ContainerdPid()
	Expect(d.Cmd.Process.Kill()).To(Succeed())
	_ = d.Cmd.Wait()
	if ctrd > 0 && d.Embedded() {
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
	d.Conn.Close()
}

// terminate sends SIGTERM and waits for a clean exit, with containerd gone.
func (d *slipwayd) terminate() {
	GinkgoHelper()
	Expect(d.Terminate()).To(Succeed())
}
