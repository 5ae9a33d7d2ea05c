package e2e

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Container security", func() {
	var pod testPod
	BeforeEach(func(ctx context.Context) { pod = runTestPod(ctx, "security") })

	It("blocks a syscall the RuntimeDefault seccomp profile denies, which Unconfined allows", func(ctx context.Context) {
		config := containerConfig("seccomp-default", "unshare -U true && echo allowed || echo denied")
		config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		lines, _ := runToExit(ctx, pod, config)
		Expect(strings.Join(lines, "\n")).To(ContainSubstring("denied"))

		config = containerConfig("seccomp-unconfined", "unshare -U true && echo allowed || echo denied")
		config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
		lines, _ = runToExit(ctx, pod, config)
		Expect(lines).To(ContainElement("allowed"))
	})

	It("drops every capability with drop ALL", func(ctx context.Context) {
		config := containerConfig("nocaps", "grep Cap /proc/self/status")
		config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
		lines, _ := runToExit(ctx, pod, config)
		Expect(lines).To(ContainElement(MatchRegexp(`^CapEff:\s+0000000000000000$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^CapBnd:\s+0000000000000000$`)))
	})

	It("runs as run_as_user with run_as_group and supplemental groups", func(ctx context.Context) {
		config := containerConfig("ids", "id")
		sc := config.Linux.SecurityContext
		sc.RunAsUser = &runtimeapi.Int64Value{Value: 1234}
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: 5678}
		sc.SupplementalGroups = []int64{4000, 4001}
		lines, _ := runToExit(ctx, pod, config)
		Expect(lines).To(HaveLen(1))
		Expect(lines[0]).To(HavePrefix("uid=1234 gid=5678 groups="))
		Expect(lines[0]).To(And(ContainSubstring("4000"), ContainSubstring("4001")))
	})

	It("rejects writes to a readonly rootfs", func(ctx context.Context) {
		config := containerConfig("readonly", "touch /newfile && echo wrote || echo refused")
		config.Linux.SecurityContext.ReadonlyRootfs = true
		lines, _ := runToExit(ctx, pod, config)
		Expect(strings.Join(lines, "\n")).To(And(ContainSubstring("Read-only file system"), ContainSubstring("refused")))
	})
})
