package pod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/oomscore"
)

const (
	// SandboxIDAnnotation groups a pod's processes into one runc shim.
	SandboxIDAnnotation = "io.kubernetes.cri.sandbox-id"
	infraPath           = "/infra"
	infraUID            = 65535
	infraOOMScoreAdj    = -998
	infraCleanupTimeout = 10 * time.Second
)

// infraEnv is the whole environment of a slipway-infra process. It only
// waits for signals, so one P is enough; with the default (one per CPU)
// the Go runtime starts more threads and keeps more span and stack
// memory: measured 70-90 KiB more private memory per pod on 2 CPUs.
var infraEnv = []string{"GOMAXPROCS=1"}

// Infra runs the process that holds a pod's shared PID namespace, from a
// synthetic root filesystem that contains only the slipway-infra binary.
type Infra struct {
	client *containerd.Client
	rootfs string
	// image, when set, replaces the synthetic rootfs: the infra process is
	// the image's entrypoint (a pause image), as on other runtimes.
	image string
}

// NewInfra copies binary into rootfsDir/infra (with the directories runc
// mounts on) and returns an Infra that runs it through client.
func NewInfra(client *containerd.Client, binary, rootfsDir string) (*Infra, error) {
	if err := prepareRootfs(binary, rootfsDir); err != nil {
		return nil, err
	}
	return &Infra{client: client, rootfs: rootfsDir}, nil
}

// prepareRootfs makes the synthetic rootfs: the infra binary and the
// directories runc mounts on.
func prepareRootfs(binary, rootfsDir string) error {
	for _, d := range []string{"proc", "dev", "sys", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfsDir, d), 0o755); err != nil {
			return fmt.Errorf("preparing infra rootfs: %w", err)
		}
	}
	if err := copyExecutable(binary, filepath.Join(rootfsDir, infraPath)); err != nil {
		return fmt.Errorf("installing infra binary %s: %w", binary, err)
	}
	return nil
}

// UseImage makes the infra process run from image (a pause image already in
// the image store) instead of the synthetic rootfs.
func (i *Infra) UseImage(image string) { i.image = image }

// Image is the image infra processes run from, "" for the synthetic rootfs.
func (i *Infra) Image() string { return i.image }

// Start creates and starts the infra process of pod p in its pinned
// namespaces, with a new PID namespace, under cgroupsPath. It runs to the
// end even if ctx is cancelled, so a half-made task never outlives a
// cancelled RunPodSandbox unseen: the caller's undo removes it.
func (i *Infra) Start(ctx context.Context, p Sandbox, cgroupsPath string) (retErr error) {
	ctx = context.WithoutCancel(ctx)
	var containerOpts []containerd.NewContainerOpts
	var opts []oci.SpecOpts
	if i.image != "" {
		img, err := i.client.GetImage(ctx, i.image)
		if err != nil {
			return fmt.Errorf("sandbox image %q: %w", i.image, err)
		}
		// In a pod with a user namespace the image's layers are ID-mapped,
		// as a container's are: runc creates mount points in them.
		var remap []snapshots.Opt
		if uids, gids := p.UserNamespace(); uids != nil {
			remap = append(remap, containerd.WithUserNSRemapperLabels(uids, gids))
		}
		containerOpts = append(containerOpts, containerd.WithNewSnapshot(p.ID, img, remap...))
		opts = append(opts, oci.WithImageConfig(img), oci.WithRootFSReadonly())
	} else {
		opts = append(opts, oci.WithRootFSPath(i.rootfs), oci.WithRootFSReadonly(), oci.WithProcessArgs(infraPath), oci.WithEnv(infraEnv))
	}
	opts = append(opts,
		oci.WithUserID(infraUID),
		oci.WithCapabilities(nil),
		oci.WithNoNewPrivileges,
		oci.WithAnnotations(map[string]string{SandboxIDAnnotation: p.ID}),
		oomscore.WithClamped(infraOOMScoreAdj),
	)
	if cgroupsPath != "" {
		opts = append(opts, oci.WithCgroup(cgroupsPath))
	}
	for kind, nsType := range map[namespaces.Kind]specs.LinuxNamespaceType{
		namespaces.Net: specs.NetworkNamespace, namespaces.IPC: specs.IPCNamespace, namespaces.UTS: specs.UTSNamespace,
	} {
		if path, ok := p.Namespaces[kind]; ok {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: nsType, Path: path}))
		} else {
			opts = append(opts, oci.WithHostNamespace(nsType))
		}
	}
	if path, ok := p.Namespaces[namespaces.User]; ok {
		uids, gids := p.UserNamespace()
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UserNamespace, Path: path}), withIDMappings(uids, gids))
	}
	container, err := i.client.NewContainer(ctx, p.ID, append(containerOpts,
		containerd.WithContainerLabels(map[string]string{KindLabel: "infra"}),
		containerd.WithRuntime(RuntimeName, nil),
		containerd.WithNewSpec(opts...),
	)...)
	if err != nil {
		return fmt.Errorf("creating infra container: %w", err)
	}
	defer func() {
		if retErr != nil {
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), infraCleanupTimeout)
			defer cancel()
			_ = container.Delete(cleanup, containerd.WithSnapshotCleanup)
		}
	}()
	task, err := container.NewTask(ctx, cio.NullIO)
	if err != nil {
		return fmt.Errorf("creating infra task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return fmt.Errorf("starting infra process: %w", err)
	}
	return nil
}

// Stop kills the infra process of pod id and deletes its task. It uses
// SIGKILL at once: the infra has nothing to flush, and as PID 1 of its
// namespace it would ignore a SIGTERM that arrives before its handler is
// installed. Missing is not an error.
func (i *Infra) Stop(ctx context.Context, id string) error {
	container, err := i.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading infra task: %w", err)
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting infra task: %w", err)
	}
	return nil
}

// Remove stops and deletes the infra container of pod id; missing is fine.
func (i *Infra) Remove(ctx context.Context, id string) error {
	if err := i.Stop(ctx, id); err != nil {
		return err
	}
	container, err := i.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := container.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting infra container: %w", err)
	}
	return nil
}

// copyExecutable copies src to dst atomically (a running infra keeps its
// old inode).
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return errors.Join(os.Rename(tmp, dst))
}

// Pid is the pid of pod id's running infra process.
func (i *Infra) Pid(ctx context.Context, id string) (uint32, error) {
	container, err := i.client.LoadContainer(ctx, id)
	if err != nil {
		return 0, err
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		return 0, err
	}
	return task.Pid(), nil
}
