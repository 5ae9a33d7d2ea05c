package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("crictl exec -it", func() {
	for _, transport := range streamingTransports {
		// FlakeAttempts: the terminal's first size sometimes reaches the
		// shell late, or not before it prints its first answers (a known
		// race between the exec start and the resize stream, open in the
		// closing note); each attempt still checks everything.
		It("runs a shell in a terminal that follows resizes, over "+transport, FlakeAttempts(3), func(ctx context.Context) {
			requireTool("crictl")
			pod := runTestPod(ctx, "exec-tty")
			id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 3600"))

			term := startTmux(ctx, 100, 30, "crictl", "--runtime-endpoint", "unix://"+daemon.socket,
				"exec", "-it", "--transport", transport, id, "sh")
			// The first size can reach the shell just after it starts (the
			// size arrives on its own stream): ask until it shows.
			term.waitScreen(ctx, "/ #")
			term.sendUntil(ctx, "stty size", "30 100")
			term.send(ctx, "echo out-$((6*7)) $TERM")
			term.waitScreen(ctx, "out-42 xterm")

			term.resize(ctx, 120, 40)
			term.sendUntil(ctx, "stty size", "40 120")

			term.send(ctx, "exit 7")
			// The pane's end is not reported reliably (tmux sometimes gives no
			// status, and crictl's websocket client is sometimes ended by a
			// signal as the stream closes): check the exit code only when
			// crictl's own status says it exited.
			exit := term.paneExit(ctx)
			Expect(exit).To(Or(Equal("1"), HavePrefix("signal"), BeEmpty()), "crictl fails when the command does")
			if exit == "1" {
				Expect(term.screen(ctx)).To(ContainSubstring("exit code 7"))
			}
		})
	}
})
