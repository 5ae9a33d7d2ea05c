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
	// exited has a channel per running container, closed once its exit is
	// recorded; mu guards it.
	exited map[string]chan struct{}
	// oomed are containers containerd reported an OOM kill for; mu guards it.
	oomed map[string]bool
}

// New returns a Runtime. Call Recover once the store is loaded.
func New(opts Options) *Runtime {
	return &Runtime{opts: opts, exited: map[string]chan struct{}{}, oomed: map[string]bool{}}
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
	// container record refers to it.
	ctx, releaseLease, err := r.opts.Client.WithLease(ctx)
	if err != nil {
		return fmt.Errorf("taking a lease: %w", err)
	}
	defer func() {
		if err := releaseLease(context.WithoutCancel(ctx)); err != nil {
			log.G(ctx).WithError(err).Warn("releasing lease")
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

// Usage is the disk the container's writable layer uses.
func (r *Runtime) Usage(ctx context.Context, id string) (bytes, inodes int64, err error) {
	u, err := r.opts.Client.SnapshotService(r.opts.Snapshotter).Usage(ctx, id)
	return u.Size, u.Inodes, err
}

// Start creates the container's task with its log IO and starts it. A
// container that fails to start is recorded as exited with the error.
func (r *Runtime) Start(ctx context.Context, id string) (retErr error) {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		return fmt.Errorf("container %s is %s, not created: %w", id, c.State, errdefs.ErrFailedPrecondition)
	}
	defer func() {
		if retErr != nil {
			c.State, c.FinishedAt, c.ExitCode = runtimeapi.ContainerState_CONTAINER_EXITED, time.Now(), 128
			c.Reason, c.Message = "StartError", retErr.Error()
			if err := r.opts.Store.Update(context.WithoutCancel(ctx), c); err != nil {
				log.G(ctx).WithError(err).Warn("recording failed start")
			}
		}
	}()
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	attach, err := r.prepareAttach(c)
	if err != nil {
		return err
	}
	creator, err := r.opts.LogIO(c, attach)
	if err != nil {
		r.cleanupAttach(ctx, id)
		return err
	}
	task, err := cc.NewTask(ctx, creator)
	if err != nil {
		r.cleanupAttach(ctx, id)
		return fmt.Errorf("creating task: %w", err)
	}
	// Wait before Start, so even an instant exit is seen.
	waitCtx := context.WithoutCancel(ctx)
	exitC, err := task.Wait(waitCtx)
	if err != nil {
		_, _ = task.Delete(waitCtx, containerd.WithProcessKill)
		return fmt.Errorf("waiting on task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(waitCtx, containerd.WithProcessKill)
		return fmt.Errorf("starting task: %w", err)
	}
	c.State, c.StartedAt, c.Pid = runtimeapi.ContainerState_CONTAINER_RUNNING, time.Now(), task.Pid()
	done := r.track(id)
	if err := r.opts.Store.Update(ctx, c); err != nil {
		return err
	}
	r.publish(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, c)
	go r.monitor(waitCtx, id, task, exitC, done)
	return nil
}

// track registers a running container's exit channel.
func (r *Runtime) track(id string) chan struct{} {
	done := make(chan struct{})
	r.mu.Lock()
	r.exited[id] = done
	r.mu.Unlock()
	return done
}

// monitor records the task's exit and deletes the task.
func (r *Runtime) monitor(ctx context.Context, id string, task containerd.Task, exitC <-chan containerd.ExitStatus, done chan struct{}) {
	status := <-exitC
	code, at, err := status.Result()
	if err != nil {
		log.G(ctx).WithError(err).WithField("containerid", id).Warn("reading container exit")
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("containerid", id).Warn("deleting exited task")
	}
	// Delete closes the task's IO only when it succeeds; a task removed
	// meanwhile must release it too (LogIO's may hold a logger open).
	if pio := task.IO(); pio != nil {
		_ = pio.Close()
	}
	if err == nil {
		// Only after a real exit: a lost connection to containerd
		// (slipwayd shutting down) leaves the task and its logger running.
		r.cleanupAttach(ctx, id)
	}
	r.recordExit(ctx, id, code, at)
	r.mu.Lock()
	delete(r.exited, id)
	r.mu.Unlock()
	close(done)
}

// recordExit stores a container's exit and publishes the STOPPED event. It
// takes no lifecycle lock: Stop and Remove hold it while they wait for it.
func (r *Runtime) recordExit(ctx context.Context, id string, code uint32, at time.Time) {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return
	}
	if at.IsZero() {
		at = time.Now()
	}
	c.State, c.FinishedAt, c.ExitCode, c.Pid = runtimeapi.ContainerState_CONTAINER_EXITED, at, int32(code), 0
	r.mu.Lock()
	oomed := r.oomed[id]
	delete(r.oomed, id)
	r.mu.Unlock()
	switch {
	case oomed:
		c.Reason = ReasonOOMKilled
	case code == 0:
		c.Reason = ReasonCompleted
	default:
		c.Reason = ReasonError
	}
	if err := r.opts.Store.Update(ctx, c); err != nil {
		log.G(ctx).WithError(err).WithField("containerid", id).Warn("recording container exit")
	}
	r.publish(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
}

// Stop sends the container's stop signal, waits up to timeout for it to
// exit, then kills it. Stopping a container that is not running succeeds.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	done, running := r.exited[id]
	r.mu.Unlock()
	if !running {
		return nil
	}
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
	r.cleanupAttach(ctx, id)
	r.opts.Store.Drop(id)
	r.publish(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	return nil
}

// Update applies new resources to a running container's task and records
// them.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources, cri *runtimeapi.LinuxContainerResources) error {
	c, err := r.opts.Store.Get(id)
	if err != nil {
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
	if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		task, err := cc.Task(ctx, nil)
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err == nil {
			if err := task.Update(ctx, containerd.WithResources(res)); err != nil {
				return fmt.Errorf("updating running container: %w", err)
			}
		}
	}
	c.Resources = cri
	return r.opts.Store.Update(ctx, c)
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

func (r *Runtime) publish(t runtimeapi.ContainerEventType, c Container) {
	if r.opts.Events != nil {
		r.opts.Events.Publish(Event{Type: t, ContainerID: c.ID, PodID: c.PodID, Time: time.Now()})
	}
}
