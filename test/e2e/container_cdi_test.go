package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("CDI devices", func() {
	It("injects a CDI device node, env and mount, written to the watched spec dir while slipwayd runs; an unknown device fails CreateContainer", func(ctx context.Context) {
		hostDir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(hostDir, "hello"), []byte("from CDI\n"), 0o644)).To(Succeed())
		specFile := filepath.Join(suiteCDIDir, "slipway-e2e.yaml")
		Expect(os.WriteFile(specFile, []byte(fmt.Sprintf(`cdiVersion: "0.6.0"
kind: e2e.slipway.dev/test
devices:
  - name: dev0
    containerEdits:
      deviceNodes:
        - path: /dev/slipway-test0
          hostPath: /dev/null
      env:
        - SLIPWAY_CDI=dev0
      mounts:
        - hostPath: %s
          containerPath: /cdi-mount
          options: [bind, ro]
`, hostDir)), 0o644)).To(Succeed())
		DeferCleanup(os.Remove, specFile)

		pod := runTestPod(ctx, "cdi")
		By("the CDI_devices field")
		config := containerConfig("cdi-field",
			`stat -c 'node %F %t:%T' /dev/slipway-test0; echo x > /dev/slipway-test0 && echo writable; echo "env $SLIPWAY_CDI"; cat /cdi-mount/hello`)
		config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "e2e.slipway.dev/test=dev0"}}
		lines, st := runToExit(ctx, pod, config)
		Expect(st.ExitCode).To(BeZero(), strings.Join(lines, "\n"))
		Expect(lines).To(ContainElements("node character special file 1:3", "writable", "env dev0", "from CDI"))

		By("a cdi.k8s.io annotation")
		config = containerConfig("cdi-annotation", `echo "env $SLIPWAY_CDI"; cat /cdi-mount/hello`)
		config.Annotations = map[string]string{"cdi.k8s.io/e2e_dev0": "e2e.slipway.dev/test=dev0"}
		lines, st = runToExit(ctx, pod, config)
		Expect(st.ExitCode).To(BeZero(), strings.Join(lines, "\n"))
		Expect(lines).To(ContainElements("env dev0", "from CDI"))

		By("an unknown device")
		config = containerConfig("cdi-unknown", "true")
		config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "e2e.slipway.dev/test=dev9"}}
		pullImage(ctx, config.Image.Image, nil)
		_, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config,
		})
		Expect(status.Code(err)).To(Equal(codes.NotFound), fmt.Sprint(err))
		Expect(err.Error()).To(ContainSubstring("CDI device e2e.slipway.dev/test=dev9: not defined by any spec in " + suiteCDIDir))

		By("a malformed device name")
		config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "dev9"}}
		_, err = runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config,
		})
		Expect(status.Code(err)).To(Equal(codes.InvalidArgument), fmt.Sprint(err))
		Expect(err.Error()).To(ContainSubstring("CDI_devices[0].name"))
	})
})
