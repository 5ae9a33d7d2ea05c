package e2e

import (
	"context"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Container logs across a slipwayd restart", func() {
	It("keep flowing while slipwayd is down", func(ctx context.Context) {
		pod := runTestPod(ctx, "logs-restart")
		runContainer(ctx, pod, containerConfig("ticker", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"))
		Eventually(func() int { return len(containerLog(pod, "ticker")) }).Should(BeNumerically(">", 3))

		daemon.terminate()
		during := len(containerLog(pod, "ticker"))
		Eventually(func() int { return len(containerLog(pod, "ticker")) }).Should(BeNumerically(">", during+10),
			"lines keep arriving with slipwayd stopped")
		daemon.start()
		daemon.waitServing(ctx)

		lines := containerLog(pod, "ticker")
		for i, l := range lines {
			Expect(l).To(Equal(strconv.Itoa(i+1)), "no line lost or repeated")
		}
	})
})
