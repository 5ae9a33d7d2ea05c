package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	registry "github.com/slipway-dev/slipway/hack/testimages/testregistry"
	"github.com/slipway-dev/slipway/runtime/imagevolume"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Image volumes", func() {
	It("mount a read-only sub path of an image that outlives the image's removal and a slipwayd restart, and go with their container", func(ctx context.Context) {
		volImage := pullImage(ctx, registry.ImageVolumeDataImage, nil)
		pod := runTestPod(ctx, "image-volume")
		config := containerConfig("reader", "sleep 3600")
		config.Mounts = []*runtimeapi.Mount{{
			ContainerPath: "/mnt/volume",
			Readonly:      true,
			Image:         &runtimeapi.ImageSpec{Image: volImage, UserSpecifiedImage: registry.ImageVolumeDataImage},
			ImageSubPath:  "data",
		}}
		id := runContainer(ctx, pod, config)
		file := "/mnt/volume/" + filepath.Base(registry.ImageVolumeDataFile)

		By("showing the image's files at the sub path")
		Expect(execIn(ctx, id, "cat", file)).To(Equal(execResult{stdout: registry.ImageVolumeDataText}))
		Expect(execIn(ctx, id, "ls", "/mnt/volume/data").code).NotTo(BeZero(), "the sub path, not the image root, is mounted")

		By("refusing writes with EROFS")
		res := execIn(ctx, id, "sh", "-c", "echo x > /mnt/volume/new")
		Expect(res.code).NotTo(BeZero())
		Expect(res.stderr).To(ContainSubstring("Read-only file system"))
		res = execIn(ctx, id, "sh", "-c", "echo x >> "+file)
		Expect(res.stderr).To(ContainSubstring("Read-only file system"))

		By("reporting the image's ID as the mount's image_ref")
		Expect(volumeImageRef(ctx, id, "/mnt/volume")).To(Equal(volImage))

		By("keeping a view of the image on the node")
		Expect(viewsOf(ctx, id)).To(HaveLen(1))
		Expect(mountsUnder(imageVolumeDir(id))).To(Equal(1))

		By("keeping the view's layers when the image is removed, as containerd does")
		removeImage(ctx, volImage)
		Expect(imageStatus(ctx, volImage)).To(BeNil())
		Expect(execIn(ctx, id, "cat", file).stdout).To(Equal(registry.ImageVolumeDataText))

		By("surviving a slipwayd restart")
		daemon.restart(ctx)
		Expect(volumeImageRef(ctx, id, "/mnt/volume")).To(Equal(volImage))
		Expect(execIn(ctx, id, "cat", file).stdout).To(Equal(registry.ImageVolumeDataText))
		Expect(viewsOf(ctx, id)).To(HaveLen(1))

		By("removing the view, its mount and its lease with the container")
		_, err := runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		Expect(err).NotTo(HaveOccurred())
		Expect(viewsOf(ctx, id)).To(BeEmpty())
		Expect(mountsUnder(imageVolumeDir(id))).To(BeZero())
		Expect(imageVolumeDir(id)).NotTo(BeAnExistingFile())
		Expect(leaseOf(ctx, id)).To(BeFalse())
	})

	It("refuse a sub path the image lacks, leaving nothing behind", func(ctx context.Context) {
		volImage := pullImage(ctx, registry.ImageVolumeDataImage, nil)
		pod := runTestPod(ctx, "image-volume-bad")
		config := containerConfig("reader", "sleep 3600")
		config.Mounts = []*runtimeapi.Mount{{
			ContainerPath: "/mnt/volume", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volImage}, ImageSubPath: "no/such/dir",
		}}
		pullImage(ctx, config.Image.Image, nil)
		_, err := runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod.ID, Config: config, SandboxConfig: pod.Config})
		Expect(err).To(MatchError(ContainSubstring("InvalidArgument")))
		Expect(err).To(MatchError(ContainSubstring("config.mounts[0].image_sub_path")))
		entries, err := os.ReadDir(filepath.Join(daemon.State, "image-volumes"))
		if err == nil {
			Expect(entries).To(BeEmpty())
		}
		Expect(allViews(ctx)).To(BeEmpty())
	})

	It("are mounted again at start-up for a created container when a reboot unmounted them", func(ctx context.Context) {
		volImage := pullImage(ctx, registry.ImageVolumeDataImage, nil)
		pod := runTestPod(ctx, "image-volume-reboot")
		config := containerConfig("reader", "sleep 3600")
		config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/volume", Readonly: true, Image: &runtimeapi.ImageSpec{Image: volImage}}}
		id := createContainer(ctx, pod, config)

		daemon.terminate()
		// A reboot empties the state directory (a tmpfs) and its mounts.
		Expect(mount.UnmountAll(filepath.Join(imageVolumeDir(id), "0"), 0)).To(Succeed())
		Expect(os.RemoveAll(imageVolumeDir(id))).To(Succeed())
		daemon.start()
		daemon.waitServing(ctx)

		Expect(mountsUnder(imageVolumeDir(id))).To(Equal(1))
		startContainer(ctx, id)
		Expect(execIn(ctx, id, "cat", "/mnt/volume"+registry.ImageVolumeDataFile).stdout).To(Equal(registry.ImageVolumeDataText))
	})

	It("are removed at start-up when a crash left them without a container", func(ctx context.Context) {
		volImage := pullImage(ctx, registry.ImageVolumeDataImage, nil)
		const id = "0000crashedcreate"
		target := filepath.Join(imageVolumeDir(id), "0")
		leaveView(ctx, id, volImage, target)
		Expect(mountsUnder(imageVolumeDir(id))).To(Equal(1))

		daemon.restart(ctx)
		Expect(viewsOf(ctx, id)).To(BeEmpty())
		Expect(leaseOf(ctx, id)).To(BeFalse())
		Expect(mountsUnder(imageVolumeDir(id))).To(BeZero())
		Expect(imageVolumeDir(id)).NotTo(BeAnExistingFile())
	})
})

// execResult is what a command run with ExecSync did.
type execResult struct {
	stdout, stderr string
	code           int32
}

func execIn(ctx context.Context, id string, cmd ...string) execResult {
	GinkgoHelper()
	resp, err := runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 30})
	Expect(err).NotTo(HaveOccurred())
	return execResult{stdout: string(resp.Stdout), stderr: string(resp.Stderr), code: resp.ExitCode}
}

// volumeImageRef is the image_ref ContainerStatus reports for the image
// volume at containerPath.
func volumeImageRef(ctx context.Context, id, containerPath string) string {
	GinkgoHelper()
	for _, m := range containerStatus(ctx, id).GetMounts() {
		if m.GetContainerPath() == containerPath {
			return m.GetImage().GetImageRef()
		}
	}
	Fail("no mount at " + containerPath + " in the container's status")
	return ""
}

func imageVolumeDir(id string) string { return filepath.Join(daemon.State, "image-volumes", id) }

// mountsUnder counts the mounts at or below dir on the node.
func mountsUnder(dir string) int {
	GinkgoHelper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			n++
		}
	}
	return n
}

// viewsOf lists the image volume views of container id.
func viewsOf(ctx context.Context, id string) []string {
	GinkgoHelper()
	return walkViews(ctx, fmt.Sprintf(`labels."%s"==%s`, imagevolume.ContainerLabel, id))
}

// allViews lists every image volume view.
func allViews(ctx context.Context) []string {
	GinkgoHelper()
	return walkViews(ctx, fmt.Sprintf(`labels."%s"`, imagevolume.ContainerLabel))
}

func walkViews(ctx context.Context, filter string) []string {
	GinkgoHelper()
	c := ctrdClient()
	defer c.Close()
	var keys []string
	Expect(c.SnapshotService("overlayfs").Walk(nsContext(ctx), func(_ context.Context, info snapshots.Info) error {
		keys = append(keys, info.Name)
		return nil
	}, filter)).To(Succeed())
	return keys
}

// leaseOf tells whether container id's image volume lease exists.
func leaseOf(ctx context.Context, id string) bool {
	GinkgoHelper()
	c := ctrdClient()
	defer c.Close()
	ls, err := c.LeasesService().List(nsContext(ctx), "id=="+imagevolume.LeaseID(id))
	Expect(err).NotTo(HaveOccurred())
	return len(ls) > 0
}

// leaveView makes what a crash in CreateContainer after mounting an image
// volume leaves: the lease, the view and its mount, and no container.
func leaveView(ctx context.Context, id, image, target string) {
	GinkgoHelper()
	c := ctrdClient()
	defer c.Close()
	ctx = nsContext(ctx)
	_, err := c.LeasesService().Create(ctx, leases.WithID(imagevolume.LeaseID(id)), leases.WithLabel(imagevolume.ContainerLabel, id))
	Expect(err).NotTo(HaveOccurred())
	ctx = leases.WithLease(ctx, imagevolume.LeaseID(id))
	img, err := c.GetImage(ctx, registry.ImageVolumeDataImage)
	Expect(err).NotTo(HaveOccurred())
	diffIDs, err := img.RootFS(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(diffIDs).To(HaveLen(1))
	mounts, err := c.SnapshotService("overlayfs").View(ctx, imagevolume.ViewKey(id, 0), diffIDs[0].String(),
		snapshots.WithLabels(map[string]string{imagevolume.ContainerLabel: id, imagevolume.TargetLabel: target}))
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(target, 0o700)).To(Succeed())
	Expect(mount.All(mounts, target)).To(Succeed())
	DeferCleanup(func(ctx context.Context) {
		// Only if the spec failed before slipwayd removed them.
		_ = mount.UnmountAll(target, 0)
		c := ctrdClient()
		defer c.Close()
		err := c.SnapshotService("overlayfs").Remove(nsContext(ctx), imagevolume.ViewKey(id, 0))
		Expect(err == nil || errdefs.IsNotFound(err)).To(BeTrue())
		_ = c.LeasesService().Delete(nsContext(ctx), leases.Lease{ID: imagevolume.LeaseID(id)})
	})
}

// nsContext is ctx in the CRI's containerd namespace.
func nsContext(ctx context.Context) context.Context { return namespaces.WithNamespace(ctx, "k8s.io") }
