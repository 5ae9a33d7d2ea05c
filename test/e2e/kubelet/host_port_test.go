package kubelet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

// hostPort is the node port the spec maps; high, to stay clear of services.
const hostPort = 18481

// httpGet GETs url and returns the body; non-200 is an error.
func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

var _ = Describe("hostPort", func() {
	It("serves a pod's port on 127.0.0.1 through slipway's CNI and portmap", func(ctx context.Context) {
		web := corev1.Container{Name: "web", Image: nginxImage,
			Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: hostPort, Protocol: corev1.ProtocolTCP}}}
		web.ReadinessProbe = tcpProbe(80)
		p := runStaticPod(newPod("hostport", web))
		p.waitReady(ctx)

		url := fmt.Sprintf("http://127.0.0.1:%d/", hostPort)
		Eventually(func() (string, error) { return httpGet(ctx, url) }).WithTimeout(30 * time.Second).WithPolling(poll).
			Should(ContainSubstring("Welcome to nginx!"))

		p.remove(ctx)
		_, err := httpGet(ctx, url)
		Expect(err).To(HaveOccurred(), "the host port is no longer served once the pod is gone")
	})
})
