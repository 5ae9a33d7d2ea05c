package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	registry "github.com/slipway-dev/slipway/hack/testimages/testregistry"
)

var _ = Describe("crictl port-forward", func() {
	for _, transport := range streamingTransports {
		It("carries HTTP requests to a web server in a pod, over "+transport, func(ctx context.Context) {
			requireTool("crictl")
			pod := runTestPod(ctx, "port-forward")
			nginx := containerConfig("nginx", "")
			nginx.Image.Image, nginx.Command = registry.NginxImage, nil
			runContainer(ctx, pod, nginx)

			pfCtx, stop := context.WithCancel(ctx)
			pf := crictlCommand(pfCtx, "port-forward", "--transport", transport, pod.ID, ":80")
			out, err := pf.StdoutPipe()
			Expect(err).NotTo(HaveOccurred())
			Expect(pf.Start()).To(Succeed())
			DeferCleanup(func() { stop(); _ = pf.Wait() })

			// "Forwarding from 127.0.0.1:PORT -> 80"
			forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 80`)
			lines := bufio.NewScanner(out)
			var port string
			for port == "" && lines.Scan() {
				if m := forwarding.FindStringSubmatch(lines.Text()); m != nil {
					port = m[1]
				}
			}
			Expect(port).NotTo(BeEmpty(), "crictl port-forward did not report its local port")
			go func() { _, _ = io.Copy(io.Discard, out) }()

			client := &http.Client{Timeout: 10 * time.Second}
			// The server may still be starting: retry until it answers.
			var body string
			Eventually(func() error {
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%s/", port))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				body = string(b)
				return err
			}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
			Expect(body).To(ContainSubstring("Welcome to nginx!"))
			// Each request is a new stream on the same session.
			for range 3 {
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%s/index.html", port))
				Expect(err).NotTo(HaveOccurred())
				resp.Body.Close()
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
			}
		})
	}
})
