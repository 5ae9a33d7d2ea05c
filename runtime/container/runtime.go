package container

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/moby/sys/signal"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeName is the containerd shim every container runs under.
const RuntimeName = "io.containerd.runc.v2"

// LogIO makes the IO of a container's task: its stdout and stderr go to
// the container's CRI log, and, when attach's paths are set, the logger
// serves them on attach.Socket and the task reads attach.Stdin as stdin.
type LogIO func(c Container, attach AttachPaths) (cio.Creator, error)

// Options configure a Runtime.
type Options struct {
	Client        *containerd.Client
	Store         *Store
	Events        *Events
	Snapshotter   string
	SystemdCgroup bool
	LogIO         LogIO
	// FIFODir holds the FIFOs of exec processes' IO.
	FIFODir string
	// AttachDir holds each running container's attach socket and stdin
	// FIFO (see Attach); it must be private to root. Empty disables attach.
	AttachDir string
}

// Runtime creates, starts, stops and removes containers and records how
// they exit.
type Runtime struct {
	opts Options

	mu sync.Mutex
	// monitors has the exit monitor of every container whose task may
	// run (see monitor.go); mu guards it.
	monitors map[string]*monitor
	// oomed are containers containerd reported an OOM kill for; mu guards it.
	oomed map[string]bool
	// closed is closed by Close: monitors stop retrying.
	closed    chan struct{}
	closeOnce sync.Once
}

// New returns a Runtime. Call Reconcile once the store is loaded.
func New(opts Options) *Runtime {
	return &Runtime{opts: opts, monitors: map[string]*monitor{}, oomed: map[string]bool{}, closed: make(chan struct{})}
}

// CreateRequest is a container to create.
type CreateRequest struct {
	// Container is the record to keep (State is set to CREATED; CgroupsPath
	// is taken from the spec).
	Container Container
	// ImageName is the containerd image record its rootfs comes from.
	ImageName string
	// SpecOpts returns the spec options once the rootfs snapshot exists;
	// rootfs are its mounts, for options that read the image's files.
	SpecOpts func(rootfs []mount.Mount) ([]oci.SpecOpts, error)
}

// Create makes the container's rootfs snapshot, its spec and its
// containerd record; on error it leaves nothing behind.
func (r *Runtime) Create(ctx context.Context, req CreateRequest) (retErr error) {
	c := req.Container
	c.State = runtimeapi.ContainerState_CONTAINER_CREATED
	img, err := r.opts.Client.GetImage(ctx, req.ImageName)
	if err != nil {
		return fmt.Errorf("image %q: %w", req.ImageName, err)
	}
	// The lease keeps containerd's GC off the new snapshot until the
	// container record refers to it; one a crash left is deleted by
	// ReleaseStaleLeases.
	ctx, releaseLease, err := r.opts.Client.WithLease(ctx, leases.WithLabel(leaseLabel, "create"), leases.WithExpiration(time.Hour))
	if err != nil {
		return fmt.Errorf("taking a lease: %w", err)
	}
	defer func() {
		if err := releaseLease(context.WithoutCancel(ctx)); err != nil {
			log.G(ctx).WithError(err).Warn("releasing lease")
		}
	}()
	if err := r.guard(ctx, c.ID); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			if err := r.unguard(context.WithoutCancel(ctx), c.ID); err != nil {
				log.G(ctx).WithError(err).Warn("removing exit guard of failed container")
			}
		}
	}()
	rootfs, err := r.prepareRootfs(ctx, c.ID, img)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			if err := r.opts.Client.SnapshotService(r.opts.Snapshotter).Remove(context.WithoutCancel(ctx), c.ID); err != nil {
				log.G(ctx).WithError(err).Warn("removing rootfs of failed container")
			}
		}
	}()
	specOpts, err := req.SpecOpts(rootfs)
	if err != nil {
		return err
	}
	specCtx := ctx
	if _, ok := namespaces.Namespace(ctx); !ok {
		specCtx = namespaces.WithNamespace(ctx, r.opts.Client.DefaultNamespace())
	}
	spec, err := oci.GenerateSpec(specCtx, r.opts.Client, &containers.Container{ID: c.ID}, specOpts...)
	if err != nil {
		return fmt.Errorf("making container spec: %w", err)
	}
	if spec.Linux != nil {
		c.CgroupsPath = spec.Linux.CgroupsPath
	}
	if spec.Process != nil {
		u := spec.Process.User
		c.User = ProcessUser{UID: u.UID, GID: u.GID, Groups: u.AdditionalGids}
	}
	ext, err := Extension(c)
	if err != nil {
		return err
	}
	_, err = r.opts.Client.NewContainer(ctx, c.ID,
		containerd.WithImageName(img.Name()),
		containerd.WithSnapshotter(r.opts.Snapshotter),
		containerd.WithSnapshot(c.ID),
		containerd.WithSpec(spec),
		containerd.WithRuntime(RuntimeName, &options.Options{SystemdCgroup: r.opts.SystemdCgroup}),
		containerd.WithContainerLabels(Labels(c.PodID)),
		func(_ context.Context, _ *containerd.Client, cc *containers.Container) error {
			if cc.Extensions == nil {
				cc.Extensions = map[string]typeurl.Any{}
			}
			cc.Extensions[extensionKey] = ext
			return nil
		},
	)
	if err != nil {
		return fmt.Errorf("creating container: %w", err)
	}
	r.opts.Store.Add(c)
	r.publish(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, c)
	return nil
}

// prepareRootfs unpacks img for the snapshotter if needed and prepares the
// container's writable snapshot on top of it.
func (r *Runtime) prepareRootfs(ctx context.Context, id string, img containerd.Image) ([]mount.Mount, error) {
	unpacked, err := img.IsUnpacked(ctx, r.opts.Snapshotter)
	if err != nil {
		return nil, fmt.Errorf("checking image unpack: %w", err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, r.opts.Snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking image: %w", err)
		}
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading image layers: %w", err)
	}
	parent := identity.ChainID(diffIDs).String()
	mounts, err := r.opts.Client.SnapshotService(r.opts.Snapshotter).Prepare(ctx, id, parent)
	if err != nil {
		return nil, fmt.Errorf("preparing rootfs: %w", err)
	}
	return mounts, nil
}

// leaseLabel marks the leases container creation takes.
const leaseLabel = "io.slipway.lease"

// CleanupInterrupted removes what creations and removals that a crash
// interrupted left: their leases (so containerd's GC removes the
// snapshots they held) and exit guards without a container. Call it at
// start-up, before any creation.
func (r *Runtime) CleanupInterrupted(ctx context.Context) error {
	if err := r.removeStaleGuards(ctx); err != nil {
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

// Usage is the disk the container's writable layer uses.
func (r *Runtime) Usage(ctx context.Context, id string) (bytes, inodes int64, err error) {
	u, err := r.opts.Client.SnapshotService(r.opts.Snapshotter).Usage(ctx, id)
	return u.Size, u.Inodes, err
}

// Start creates the container's task with its log IO and starts it. A
// container whose task cannot be started is recorded as exited with the
// error. Once the task runs, its monitor is armed before the record is
// written: if that write fails, the error is returned, the container
// still runs and is followed, and Reconcile writes the record later.
func (r *Runtime) Start(ctx context.Context, id string) error {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_CREATED || r.monitorOf(id) != nil {
		return fmt.Errorf("container %s is %s, not created: %w", id, c.State, errdefs.ErrFailedPrecondition)
	}
	task, exitC, startedAt, err := r.startTask(ctx, c)
	if err != nil {
		_, recErr := r.opts.Store.Modify(context.WithoutCancel(ctx), id, func(c *Container) bool {
			if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
				return false
			}
			now := time.Now()
			c.State, c.StartedAt, c.FinishedAt, c.ExitCode = runtimeapi.ContainerState_CONTAINER_EXITED, now, now, 128
			c.Reason, c.Message = "StartError", err.Error()
			return true
		})
		if recErr != nil {
			log.G(ctx).WithError(recErr).Warn("recording failed start")
		}
		return err
	}
	m, _ := r.arm(ctx, id, task, exitC, startedAt)
	if err := r.recordStart(context.WithoutCancel(ctx), id, startedAt, m.pid); err != nil {
		return fmt.Errorf("container %s runs, but recording its start failed (it is retried): %w", id, err)
	}
	return nil
}

// startTask creates c's task and starts it, with a wait in place before
// the start so even an instant exit is seen. startedAt is taken before the
// start, so it is never after the exit the shim reports. On error no task
// is left.
func (r *Runtime) startTask(ctx context.Context, c Container) (_ containerd.Task, _ <-chan containerd.ExitStatus, startedAt time.Time, retErr error) {
	cc, err := r.opts.Client.LoadContainer(ctx, c.ID)
	if err != nil {
		return nil, nil, startedAt, err
	}
	attach, err := r.prepareAttach(c)
	if err != nil {
		return nil, nil, startedAt, err
	}
	defer func() {
		if retErr != nil {
			r.cleanupAttach(ctx, c.ID)
		}
	}()
	creator, err := r.opts.LogIO(c, attach)
	if err != nil {
		return nil, nil, startedAt, err
	}
	task, err := cc.NewTask(ctx, creator)
	if err != nil {
		return nil, nil, startedAt, fmt.Errorf("creating task: %w", err)
	}
	cleanup := context.WithoutCancel(ctx)
	exitC, err := task.Wait(cleanup)
	if err != nil {
		_, _ = task.Delete(cleanup, containerd.WithProcessKill)
		return nil, nil, startedAt, fmt.Errorf("waiting on task: %w", err)
	}
	startedAt = time.Now()
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(cleanup, containerd.WithProcessKill)
		return nil, nil, startedAt, fmt.Errorf("starting task: %w", err)
	}
	return task, exitC, startedAt, nil
}

// Stop sends the container's stop signal, waits up to timeout for it to
// exit, then kills it. Stopping a container that is not running succeeds.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return err
	}
	m := r.monitorOf(id)
	if m == nil && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		// Recorded as running but not followed (containerd was away when
		// slipwayd started): follow it now.
		if err := r.reconcileOne(ctx, c); err != nil {
			return err
		}
		m = r.monitorOf(id)
	}
	if m == nil {
		return nil
	}
	done := m.done
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	task, err := cc.Task(ctx, nil)
	if err != nil {
		return exitedOr(done, fmt.Errorf("loading task: %w", err))
	}
	if timeout > 0 {
		sig := syscall.SIGTERM
		if c.StopSignal != "" {
			if s, err := signal.ParseSignal(c.StopSignal); err == nil {
				sig = s
			}
		}
		if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			return exitedOr(done, fmt.Errorf("signalling container: %w", err))
		}
		select {
		case <-done:
			return nil
		case <-time.After(timeout):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return exitedOr(done, fmt.Errorf("killing container: %w", err))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exitRace is how long a failed signal waits for the exit it raced with:
// a container exiting on its own takes its shim's connection with it.
const exitRace = 5 * time.Second

// exitedOr returns nil when the container's exit is recorded within
// exitRace, else err.
func exitedOr(done <-chan struct{}, err error) error {
	select {
	case <-done:
		return nil
	case <-time.After(exitRace):
		return err
	}
}

// Remove kills the container if it runs and deletes it with its rootfs.
// Removing a missing container succeeds.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	c, err := r.opts.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.Stop(ctx, id, 0); err != nil {
		return err
	}
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err == nil {
		if task, err := cc.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("deleting task: %w", err)
			}
		}
		if err := cc.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting container: %w", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if err := r.unguard(ctx, id); err != nil {
		return err
	}
	r.cleanupAttach(ctx, id)
	r.opts.Store.Drop(id)
	r.publish(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	return nil
}

// Update applies new resources to a running container's task and records
// them.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources, cri *runtimeapi.LinuxContainerResources) error {
	if _, err := r.opts.Store.Get(id); err != nil {
		return err
	}
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	// Keep the stored spec current, so a restart of the task uses it.
	if err := cc.Update(ctx, func(ctx context.Context, client *containerd.Client, cs *containers.Container) error {
		s, err := cc.Spec(ctx)
		if err != nil {
			return err
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.Resources = mergeResources(s.Linux.Resources, res)
		spec, err := typeurl.MarshalAnyToProto(s)
		if err != nil {
			return err
		}
		cs.Spec = spec
		return nil
	}); err != nil {
		return fmt.Errorf("updating container spec: %w", err)
	}
	if r.monitorOf(id) != nil {
		task, err := cc.Task(ctx, nil)
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err == nil {
			if err := task.Update(ctx, containerd.WithResources(res)); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("updating running container: %w", err)
			}
		}
	}
	// Only the resources change: an exit recorded meanwhile stays.
	_, err = r.opts.Store.Modify(ctx, id, func(c *Container) bool { c.Resources = cri; return true })
	return err
}

// mergeResources overlays the set fields of update on current.
func mergeResources(current, update *specs.LinuxResources) *specs.LinuxResources {
	if current == nil {
		return update
	}
	if update.CPU != nil {
		current.CPU = update.CPU
	}
	if update.Memory != nil {
		current.Memory = update.Memory
	}
	if update.Pids != nil {
		current.Pids = update.Pids
	}
	if update.HugepageLimits != nil {
		current.HugepageLimits = update.HugepageLimits
	}
	if update.Unified != nil {
		current.Unified = update.Unified
	}
	return current
}

// Task returns a running container's task, for exec and stats.
func (r *Runtime) Task(ctx context.Context, id string) (containerd.Task, error) {
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return cc.Task(ctx, nil)
}

func (r *Runtime) publish(t runtimeapi.ContainerEventType, c Container) {
	if r.opts.Events != nil {
		r.opts.Events.Publish(Event{Type: t, ContainerID: c.ID, PodID: c.PodID, Time: time.Now()})
	}
}
