package kubelet

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/test/e2e/harness"
)

// slipwayd is the suite's slipwayd process (harness.Daemon), with its own
// root, state and CRI socket under the suite's temporary directory.
type slipwayd struct{ *harness.Daemon }

// startSlipwayd runs the binary named by $SLIPWAYD_BIN (make e2e-kubelet
// builds it) and waits until its CRI answers.
func startSlipwayd(ctx context.Context, work, hostsDir, cniConfDir string) *slipwayd {
	daemon, err := harness.NewDaemon(work, hostsDir, cniConfDir)
	Expect(err).NotTo(HaveOccurred())
	d := &slipwayd{daemon}
	Expect(d.Start()).To(Succeed())
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			GinkgoWriter.Printf("slipwayd log:\n%s\n", d.LogTail(80))
		}
		d.Log.Close()
	})
	Expect(d.WaitServing(ctx)).To(Succeed())
	return d
}

// restart stops slipwayd with SIGTERM and starts it again on the same
// directories; the client connections (the suite's and kubelet's)
// reconnect by themselves.
func (d *slipwayd) restart(ctx context.Context) {
	GinkgoHelper()
	Expect(d.Terminate()).To(Succeed())
	Expect(d.Start()).To(Succeed())
	Expect(d.WaitServing(ctx)).To(Succeed())
}

// stop sends SIGTERM, waits for a clean exit and closes the client.
func (d *slipwayd) stop() {
	GinkgoHelper()
	Expect(d.Terminate()).To(Succeed())
	d.Conn.Close()
}
