package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
)

// kubeletRESTConfig reaches kubelet's API anonymously; its serving
// certificate is self-signed.
var kubeletRESTConfig = &restclient.Config{Host: "https://" + kubeletAddr, TLSClientConfig: restclient.TLSClientConfig{Insecure: true}}

// kubeletExec runs cmd in the pod's container through kubelet's /exec with
// transport "spdy" or "websocket" (remotecommand v5), feeding stdin, and
// returns stdout, stderr and the stream's error.
func kubeletExec(ctx context.Context, transport string, p *staticPod, container, stdin string, cmd ...string) (string, string, error) {
	GinkgoHelper()
	q := url.Values{corev1.ExecCommandParam: cmd, corev1.ExecStdoutParam: {"1"}, corev1.ExecStderrParam: {"1"}}
	if stdin != "" {
		q.Set(corev1.ExecStdinParam, "1")
	}
	u, err := url.Parse(fmt.Sprintf("https://%s/exec/%s/%s/%s?%s", kubeletAddr, podNamespace, p.name(), container, q.Encode()))
	Expect(err).NotTo(HaveOccurred())
	var executor remotecommand.Executor
	if transport == "websocket" {
		executor, err = remotecommand.NewWebSocketExecutor(kubeletRESTConfig, http.MethodGet, u.String())
	} else {
		executor, err = remotecommand.NewSPDYExecutor(kubeletRESTConfig, http.MethodPost, u)
	}
	Expect(err).NotTo(HaveOccurred())
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	streamCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = executor.StreamWithContext(streamCtx, opts)
	return stdout.String(), stderr.String(), err
}

var _ = Describe("kubelet's streaming API", func() {
	var p *staticPod
	BeforeEach(func(ctx context.Context) {
		web := corev1.Container{Name: "web", Image: nginxImage}
		web.ReadinessProbe = tcpProbe(80)
		p = runStaticPod(newPod("streaming", shell("shell", "exec sleep 3600"), web))
		p.waitReady(ctx)
	})

	for _, transport := range []string{"spdy", "websocket"} {
		It("runs commands through /exec over "+transport+", with stdin, both output streams and the exit code", func(ctx context.Context) {
			stdout, stderr, err := kubeletExec(ctx, transport, p, "shell", "", "sh", "-c", "echo out; echo err >&2")
			Expect(err).NotTo(HaveOccurred())
			Expect(stdout).To(Equal("out\n"))
			Expect(stderr).To(Equal("err\n"))

			stdout, _, err = kubeletExec(ctx, transport, p, "shell", "line one\nline two\n", "cat")
			Expect(err).NotTo(HaveOccurred())
			Expect(stdout).To(Equal("line one\nline two\n"))

			_, _, err = kubeletExec(ctx, transport, p, "shell", "", "sh", "-c", "exit 7")
			var exitErr utilexec.CodeExitError
			Expect(errors.As(err, &exitErr)).To(BeTrue(), "exit status error, got %v", err)
			Expect(exitErr.ExitStatus()).To(Equal(7))
		})
	}

	It("forwards a local port to the pod through /portForward", func(ctx context.Context) {
		u, err := url.Parse(fmt.Sprintf("https://%s/portForward/%s/%s", kubeletAddr, podNamespace, p.name()))
		Expect(err).NotTo(HaveOccurred())
		roundTripper, upgrader, err := spdy.RoundTripperFor(kubeletRESTConfig)
		Expect(err).NotTo(HaveOccurred())
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: roundTripper}, http.MethodPost, u)
		stop, ready := make(chan struct{}), make(chan struct{})
		var out, errOut bytes.Buffer
		fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:80"}, stop, ready, &out, &errOut)
		Expect(err).NotTo(HaveOccurred())
		done := make(chan error, 1)
		go func() { done <- fw.ForwardPorts() }()
		DeferCleanup(func() { close(stop); <-done })
		Eventually(ready).WithTimeout(30 * time.Second).Should(BeClosed())
		ports, err := fw.GetPorts()
		Expect(err).NotTo(HaveOccurred())
		Expect(ports).To(HaveLen(1))

		// Each request is a new stream over the same connection.
		for range 3 {
			body, err := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
			Expect(err).NotTo(HaveOccurred(), "port-forward: %s", errOut.String())
			Expect(body).To(ContainSubstring("Welcome to nginx!"))
		}
		// The web server logs each request: the forwarded ones reached it.
		Eventually(func() string { return node.containerLogs(ctx, p, "web", "") }).WithTimeout(30 * time.Second).WithPolling(poll).
			Should(MatchRegexp(`(?s)GET /.*GET /.*GET /`))
	})
})
