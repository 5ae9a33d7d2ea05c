package e2e

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("crictl exec -i", func() {
	for _, transport := range streamingTransports {
		It("feeds stdin to the command and ends it at the end of input, over "+transport, func(ctx context.Context) {
			requireTool("crictl")
			pod := runTestPod(ctx, "exec-stdin")
			id := runContainer(ctx, pod, containerConfig("sleeper", "sleep 3600"))

			input := strings.Repeat("0123456789abcdef", 64*1024) + "\nlast line\n" // 1 MiB and a bit
			stdout, stderr := crictlWithStdin(ctx, input, "exec", "-i", "--transport", transport, id,
				"sh", "-c", "wc -c; echo to-stderr >&2")
			Expect(strings.TrimSpace(stdout)).To(Equal("1048587"), "every byte of stdin arrived and its end was seen")
			Expect(stderr).To(ContainSubstring("to-stderr"))

			stdout, _ = crictlWithStdin(ctx, "one\ntwo\n", "exec", "-i", "--transport", transport, id, "sh", "-c", "cat; echo done")
			Expect(stdout).To(Equal("one\ntwo\ndone\n"))
		})
	}
})
