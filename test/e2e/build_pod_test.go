package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// builtImageContainer runs image (already on the node: no pull) in pod with
// the image's own ENTRYPOINT, CMD, USER and WORKDIR unless args is given.
func builtImageContainer(ctx context.Context, pod testPod, name, image string, args ...string) ([]string, *runtimeapi.ContainerStatus) {
	GinkgoHelper()
	config := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Args:     args,
		LogPath:  name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
	resp, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config,
	})
	Expect(err).NotTo(HaveOccurred())
	startContainer(ctx, resp.ContainerId)
	st := waitExited(ctx, resp.ContainerId)
	var lines []string
	Eventually(func() []string {
		lines = containerLog(pod, name)
		return lines
	}).WithTimeout(5 * time.Second).ShouldNot(BeNil())
	return lines, st
}

var _ = Describe("Built image in a pod", func() {
	It("runs as soon as the build ends, with the image's entrypoint, user and workdir", func(ctx SpecContext) {
		image := "docker.io/slipway-e2e/run:1"
		start := time.Now()
		slipwayBuild(ctx, builderAddr(), "--progress=quiet", "-t", image, corpusContext("config")).succeeded()
		built := time.Since(start)
		pod := runTestPod(ctx, "built")

		lines, st := builtImageContainer(ctx, pod, "default", image)
		GinkgoWriter.Printf("build %v, build to exited container %v\n", built, time.Since(start))
		Expect(st.ExitCode).To(BeZero(), "log: %v", lines)
		Expect(lines).To(Equal([]string{"hello world"}), "ENTRYPOINT sh -c with CMD echo \"$GREETING\" and the image's ENV")

		lines, st = builtImageContainer(ctx, pod, "identity", image, "id -u; pwd")
		Expect(st.ExitCode).To(BeZero(), "log: %v", lines)
		Expect(lines).To(Equal([]string{"1001", "/srv/app"}), "USER app and WORKDIR /srv/app")
	})
})
