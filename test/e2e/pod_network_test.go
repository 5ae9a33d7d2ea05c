package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Pods on the default network", func() {
	It("get IPs in the subnet and reach each other", func(ctx context.Context) {
		_, subnet, _ := net.ParseCIDR(testNet.Subnet)
		a := runPod(ctx, podConfig("net-a"))
		b := runPod(ctx, podConfig("net-b"))
		ipA, ipB := podStatus(ctx, a).Network.Ip, podStatus(ctx, b).Network.Ip
		Expect(subnet.Contains(net.ParseIP(ipA))).To(BeTrue(), ipA)
		Expect(subnet.Contains(net.ParseIP(ipB))).To(BeTrue(), ipB)
		Expect(ipA).NotTo(Equal(ipB))

		out, err := inPod(ctx, podVerbose(ctx, a), "busybox", "ping", "-c", "1", "-W", "2", ipB)
		Expect(err).NotTo(HaveOccurred(), out)
		out, err = inPod(ctx, podVerbose(ctx, b), "busybox", "ping", "-c", "1", "-W", "2", ipA)
		Expect(err).NotTo(HaveOccurred(), out)
	})

	It("serves a hostPort mapping from 127.0.0.1", func(ctx context.Context) {
		config := podConfig("hostport")
		config.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: 18080}}
		id := runPod(ctx, config)
		info := podVerbose(ctx, id)

		// A web server inside the pod's network namespace, run by the test.
		server := exec.Command("nsenter", "--net="+info.Namespaces["net"], "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc")
		Expect(server.Start()).To(Succeed())
		DeferCleanup(func() {
			_ = server.Process.Signal(syscall.SIGTERM)
			_ = server.Wait()
		})
		client := http.Client{Timeout: 2 * time.Second}
		Eventually(func() error {
			resp, err := client.Get("http://127.0.0.1:18080/hostname")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			_, err = io.ReadAll(resp.Body)
			return err
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	})

	It("reports the node network ready", func(ctx context.Context) {
		resp, err := runtimeSvc.Status(ctx, &runtimeapi.StatusRequest{})
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Status.Conditions).To(ContainElement(And(
			HaveField("Type", runtimeapi.NetworkReady), HaveField("Status", true))))
	})
})
