package container

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/names"
	"github.com/slipway-dev/slipway/runtime/timing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateRequest is a container to create.
type CreateRequest struct {
	// Container is the record to keep (ID, Name and State are set by
	// Create; CgroupsPath is taken from the spec).
	Container Container
	// ImageName is the containerd image record its rootfs comes from.
	ImageName string
	// DiffIDs are the image's layers for the node's platform, as the image
	// index holds them: when they are unpacked, the rootfs is made on them
	// without reading the image. Nil reads them from the image record.
	DiffIDs []digest.Digest
	// ImageVolumes are the container's image volumes, mounted before
	// SpecOpts is called.
	ImageVolumes []ImageVolume
	// SpecOpts returns the spec options of container id once its image
	// volumes are mounted; config is Container.Config with the image
	// volumes' host paths filled in. The rootfs snapshot is prepared
	// meanwhile: rootfs waits for it and returns its mounts, for options
	// that read the image's files (call it only then).
	SpecOpts func(id string, rootfs func(context.Context) ([]mount.Mount, error), config *runtimeapi.ContainerConfig) ([]oci.SpecOpts, error)
	// UIDs and GIDs are the pod's user namespace mappings, nil for the
	// node's: the rootfs is then ID-mapped (rootfsRemap).
	UIDs, GIDs []specs.LinuxIDMapping
}

// Create makes a container named name: its rootfs snapshot, its spec and
// its containerd record, and returns its ID. A retried call with the same
// name returns the first call's ID, waiting for it while it runs. On error
// it leaves nothing behind.
func (r *Runtime) Create(ctx context.Context, name string, req CreateRequest) (_ string, retErr error) {
	id := names.NewID()
	creation, existing, err := r.names.Reserve(ctx, name, id)
	if err != nil {
		return "", err
	}
	if creation == nil {
		return existing, nil
	}
	defer func() { creation.Finish(retErr == nil) }()
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("containerid", id))
	c := req.Container
	c.ID, c.Name, c.State = id, name, runtimeapi.ContainerState_CONTAINER_CREATED
	return id, r.create(ctx, c, req)
}

func (r *Runtime) create(ctx context.Context, c Container, req CreateRequest) (retErr error) {
	spans := timing.Start(ctx, "CreateContainer")
	defer spans.End()
	// The lease keeps containerd's GC off the new snapshot until the
	// container record refers to it (see lease.go).
	ctx, releaseLease, err := r.leases.take(ctx)
	if err != nil {
		return fmt.Errorf("taking a lease: %w", err)
	}
	defer releaseLease()
	spans.Step("lease")
	// The rootfs snapshot is prepared while the spec is made and the
	// container recorded: containerd records a container whose snapshot
	// does not exist yet, and the spec waits for the snapshot only to read
	// the image's files (a user name to look up). A crash between the two
	// writes leaves a snapshot without a container, which goes with the
	// lease, or a created container without its snapshot, which
	// CleanupInterrupted deletes.
	var rootfs []mount.Mount
	var rootfsErr error
	rootfsDone := make(chan struct{})
	go func() {
		defer close(rootfsDone)
		rootfs, rootfsErr = r.prepareRootfs(ctx, c.ID, req.ImageName, req.DiffIDs, rootfsRemap(req.UIDs, req.GIDs)...)
	}()
	waitRootfs := func(context.Context) ([]mount.Mount, error) {
		<-rootfsDone
		return rootfs, rootfsErr
	}
	defer func() {
		<-rootfsDone
		if retErr != nil && rootfsErr == nil {
			if err := r.opts.Client.SnapshotService(r.opts.Snapshotter).Remove(context.WithoutCancel(ctx), c.ID); err != nil {
				log.G(ctx).WithError(err).Warn("removing rootfs of failed container")
			}
		}
	}()
	if c.Config, err = r.mountImageVolumes(ctx, c.ID, c.Config, req.ImageVolumes); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			if err := r.removeImageVolumes(context.WithoutCancel(ctx), c.ID); err != nil {
				log.G(ctx).WithError(err).Warn("removing image volumes of failed container")
			}
		}
	}()
	spans.Step("image-volumes")
	specOpts, err := req.SpecOpts(c.ID, waitRootfs, c.Config)
	if err != nil {
		return err
	}
	spans.Step("spec-opts")
	specCtx := ctx
	if _, ok := namespaces.Namespace(ctx); !ok {
		specCtx = namespaces.WithNamespace(ctx, r.opts.Client.DefaultNamespace())
	}
	spec, err := oci.GenerateSpec(specCtx, r.opts.Client, &containers.Container{ID: c.ID}, specOpts...)
	if err != nil {
		return fmt.Errorf("making container spec: %w", err)
	}
	spans.Step("spec")
	// Plugins adjust the spec before the container is recorded (and
	// listed); plugin sync is held off until it is.
	unblock := r.hooks().BlockSync()
	defer unblock()
	defer func() {
		if retErr != nil {
			// Plugins that saw the creation forget it.
			undo := context.WithoutCancel(ctx)
			r.hooks().Notify(undo, Stopped, c)
			r.hooks().Notify(undo, Removed, c)
		}
	}()
	resources := specResources(spec)
	if err := r.hooks().CreateContainer(ctx, c, spec); err != nil {
		return err
	}
	c.Resources = adjustedResources(c.Resources, resources, specResources(spec))
	if spec.Linux != nil {
		c.CgroupsPath = spec.Linux.CgroupsPath
	}
	if spec.Process != nil {
		u := spec.Process.User
		c.User = ProcessUser{UID: u.UID, GID: u.GID, Groups: u.AdditionalGids}
	}
	spans.Step("nri")
	ext, err := Extension(c)
	if err != nil {
		return err
	}
	select {
	case <-rootfsDone:
		if rootfsErr != nil {
			return rootfsErr
		}
	default:
	}
	var inSandbox []containerd.NewContainerOpts
	if r.opts.Shims != nil {
		if sb := r.opts.Shims.Sandbox(c.PodID); sb != "" {
			inSandbox = append(inSandbox, containerd.WithSandbox(sb))
		}
	}
	_, err = r.opts.Client.NewContainer(ctx, c.ID, append(inSandbox,
		containerd.WithImageName(req.ImageName),
		withRootfsSnapshot(r.opts.Snapshotter, c.ID),
		containerd.WithSpec(spec),
		containerd.WithRuntime(RuntimeName, &options.Options{SystemdCgroup: r.opts.SystemdCgroup}),
		containerd.WithContainerLabels(Labels(c.PodID)),
		withExtension(ext),
	)...)
	spans.Step("record")
	<-rootfsDone
	spans.Step("rootfs")
	if rootfsErr != nil {
		if err == nil {
			if err := r.opts.Client.ContainerService().Delete(context.WithoutCancel(ctx), c.ID); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).Warn("deleting the record of a container whose rootfs failed (start-up cleanup deletes it)")
			}
		}
		return rootfsErr
	}
	if err != nil {
		return fmt.Errorf("creating container: %w", err)
	}
	r.opts.Store.Add(c)
	r.publish(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, c)
	r.hooks().Notify(ctx, PostCreate, c)
	return nil
}

// withRootfsSnapshot makes snapshot key of snapshotter the container's
// rootfs. Unlike containerd.WithSnapshot it does not ask whether the
// snapshot exists (a round trip, and Create prepares it meanwhile).
func withRootfsSnapshot(snapshotter, key string) containerd.NewContainerOpts {
	return func(_ context.Context, _ *containerd.Client, c *containers.Container) error {
		if snapshotter == "" {
			snapshotter = defaults.DefaultSnapshotter
		}
		c.Snapshotter, c.SnapshotKey = snapshotter, key
		return nil
	}
}

// prepareRootfs prepares the container's writable snapshot on the
// unpacked layers of image imageName. With diffIDs given, it prepares it
// on their chain ID at once (one call, no image read); only when that
// snapshot is missing (the image is not unpacked, or no longer) does it
// read the image record, unpack it if needed and prepare on what it holds.
func (r *Runtime) prepareRootfs(ctx context.Context, id, imageName string, diffIDs []digest.Digest, opts ...snapshots.Opt) ([]mount.Mount, error) {
	sn := r.opts.Client.SnapshotService(r.opts.Snapshotter)
	if len(diffIDs) > 0 {
		mounts, err := sn.Prepare(ctx, id, identity.ChainID(diffIDs).String(), opts...)
		if err == nil {
			return mounts, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("preparing rootfs: %w", err)
		}
	}
	img, err := r.opts.Client.GetImage(ctx, imageName)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", imageName, err)
	}
	parent, err := images.UnpackedChainID(ctx, img, r.opts.Snapshotter)
	if err != nil {
		return nil, err
	}
	mounts, err := sn.Prepare(ctx, id, parent, opts...)
	if err != nil {
		return nil, fmt.Errorf("preparing rootfs: %w", err)
	}
	return mounts, nil
}

// CleanupInterrupted removes what creations, starts and removals that a
// crash interrupted left: their leases (so containerd's GC removes the
// snapshots they held), exit guards without a container, and tasks created
// but never started, and image volumes of containers that are gone
// (those of the others are mounted again if a reboot unmounted them).
// Call it at start-up, before serving.
func (r *Runtime) CleanupInterrupted(ctx context.Context) error {
	if err := r.deleteUnprepared(ctx); err != nil {
		return err
	}
	if err := r.removeStaleGuards(ctx); err != nil {
		return err
	}
	if err := r.cleanupImageVolumes(ctx); err != nil {
		// Not fatal: what is left is retried at the next start-up.
		log.G(ctx).WithError(err).Warn("cleaning up image volumes")
	}
	if err := r.deleteUnstartedTasks(ctx); err != nil {
		return err
	}
	ls, err := r.opts.Client.LeasesService().List(ctx, fmt.Sprintf(`labels."%s"`, leaseLabel))
	if err != nil {
		return fmt.Errorf("listing leases: %w", err)
	}
	for _, l := range ls {
		if err := r.opts.Client.LeasesService().Delete(ctx, l); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting stale lease %s: %w", l.ID, err)
		}
	}
	return nil
}

// deleteUnprepared deletes the created containers whose rootfs snapshot
// does not exist: a crash came between recording the container and
// preparing its snapshot (Create makes both at once), so the creation
// never returned.
func (r *Runtime) deleteUnprepared(ctx context.Context) error {
	for _, c := range r.opts.Store.List() {
		if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			continue
		}
		info, err := r.opts.Client.ContainerService().Get(ctx, c.ID)
		if errdefs.IsNotFound(err) || err == nil && (info.SnapshotKey == "" || info.Snapshotter == "") {
			continue
		}
		if err != nil {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
		_, err = r.opts.Client.SnapshotService(info.Snapshotter).Stat(ctx, info.SnapshotKey)
		if err == nil {
			continue
		}
		if !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: rootfs snapshot: %w", c.ID, err)
		}
		if err := r.opts.Client.ContainerService().Delete(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting container %s, whose creation was interrupted: %w", c.ID, err)
		}
		log.G(ctx).WithField("containerid", c.ID).Info("deleted a container whose creation was interrupted before its rootfs was prepared")
		r.opts.Store.Drop(c.ID)
		r.names.Release(c.Name, c.ID)
	}
	return nil
}

// deleteUnstartedTasks deletes the tasks that a crash left created but not
// started, so StartContainer can make them anew.
func (r *Runtime) deleteUnstartedTasks(ctx context.Context) error {
	for _, c := range r.opts.Store.List() {
		if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			continue
		}
		task, err := r.Task(ctx, c.ID)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		st, err := task.Status(ctx)
		if err != nil {
			return err
		}
		if st.Status != containerd.Created {
			continue // started: Reconcile records it
		}
		if err := r.deleteTaskInPod(ctx, c.PodID, task, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting the unstarted task of container %s: %w", c.ID, err)
		}
		r.cleanupAttach(ctx, c.ID)
	}
	return nil
}
