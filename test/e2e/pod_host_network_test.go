package e2e

import (
	"context"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("A pod on the host network", func() {
	It("pins no network namespace, gets no pod IP and keeps the node's hostname", func(ctx context.Context) {
		config := podConfig("hostnet")
		config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		id := runPod(ctx, config)
		status := podStatus(ctx, id)
		Expect(status.State).To(Equal(runtimeapi.PodSandboxState_SANDBOX_READY))
		Expect(status.Network).To(BeNil())
		Expect(status.Linux.Namespaces.Options.Network).To(Equal(runtimeapi.NamespaceMode_NODE))

		info := podVerbose(ctx, id)
		Expect(info.Namespaces).NotTo(HaveKey("net"))
		Expect(info.Namespaces).NotTo(HaveKey("uts"))
		Expect(info.Namespaces).To(HaveKey("ipc"))
		host, _ := os.Hostname()
		Expect(os.ReadFile(info.Dir + "/hostname")).To(BeEquivalentTo(host + "\n"))
	})

	It("refuses net sysctls, naming the sysctl", func(ctx context.Context) {
		config := podConfig("hostnet-sysctl")
		config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		config.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		_, err := runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
		expectInvalid(err, "net.ipv4.ip_forward")
	})
})
