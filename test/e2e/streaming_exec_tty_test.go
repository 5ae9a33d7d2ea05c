package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("crictl exec -it", func() {
	for _, transport := range streamingTransports {
		It("runs a shell in a terminal that has the client's size from the start and follows resizes, over "+transport, func(ctx context.Context) {
			requireTool("crictl")
			pod := runTestPod(ctx, "exec-tty")
			id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 3600"))

			// The exec'd command's first instruction reads the terminal's
			// size: it must already be the client's (30 rows, 100 columns),
			// not 0 0 or a late one.
			term := startTmux(ctx, 100, 30, "crictl", "--runtime-endpoint", "unix://"+daemon.Socket,
				"exec", "-it", "--transport", transport, id, "sh", "-c", "stty size; exec sh")
			Expect(term.waitLine(ctx, `^\d+ \d+$`)).To(Equal("30 100"), "the first size the shell saw")
			term.waitScreen(ctx, "/ #")
			term.send(ctx, "echo out-$((6*7)) $TERM")
			term.waitScreen(ctx, "out-42 xterm")

			// A resize reaches the shell asynchronously (SIGWINCH in crictl,
			// a resize message, a task resize): ask until it shows.
			term.resize(ctx, 120, 40)
			term.sendUntil(ctx, "stty size", "40 120")

			term.send(ctx, "exit 7")
			Expect(term.exitStatus()).To(Equal(1), "crictl fails when the command does")
			Expect(term.screen(ctx)).To(ContainSubstring("exit code 7"))
		})
	}
})
