package e2e

import (
	"context"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Pod DNS and hostname", func() {
	It("writes the DNS config into the pod's resolv.conf and sets the hostname in its UTS namespace", func(ctx context.Context) {
		config := podConfig("dns")
		config.Hostname = "web-0"
		config.DnsConfig = &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10", "fd00::10"},
			Searches: []string{"e2e.svc.cluster.local", "svc.cluster.local"},
			Options:  []string{"ndots:5", "timeout:2"},
		}
		id := runPod(ctx, config)
		info := podVerbose(ctx, id)

		Expect(os.ReadFile(info.Dir + "/resolv.conf")).To(BeEquivalentTo(
			"search e2e.svc.cluster.local svc.cluster.local\n" +
				"nameserver 10.96.0.10\nnameserver fd00::10\n" +
				"options ndots:5 timeout:2\n"))
		Expect(os.ReadFile(info.Dir + "/hostname")).To(BeEquivalentTo("web-0\n"))
		out, err := inPod(ctx, info, "hostname")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(Equal("web-0"))
		host, _ := os.Hostname()
		Expect(host).NotTo(Equal("web-0"), "the node's hostname is untouched")
	})

	It("refuses a bad DNS server or hostname, naming the field", func(ctx context.Context) {
		config := podConfig("dns-bad")
		config.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"not-an-ip"}}
		_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
		expectInvalid(err, "dns_config.servers[0]")

		config = podConfig("host-bad")
		config.Hostname = "Bad_Host"
		_, err = runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
		expectInvalid(err, "config.hostname")
	})
})
