package container

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/moby/sys/signal"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/keylock"
	"github.com/slipway-dev/slipway/runtime/metrics"
	"github.com/slipway-dev/slipway/runtime/names"
	"github.com/slipway-dev/slipway/runtime/timing"
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
	// ImageVolumes mounts image volumes; nil refuses them.
	ImageVolumes ImageVolumes
	// Hooks are NRI's; nil runs none.
	Hooks Hooks
	// Metrics counts OOM kills and containerd reconnects; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// Shims guards task creation and deletion per shim (see shim.go);
	// nil serializes them per pod.
	Shims Shims
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
	// removals are the removals finishing in the background (see
	// remove.go); mu guards it. finishers counts their goroutines.
	removals  map[string]*removal
	finishers sync.WaitGroup
	// closed is closed by Close: monitors stop retrying.
	closed    chan struct{}
	closeOnce sync.Once
	// names binds container names to IDs.
	names *names.Registry
	// shims serializes task creation and deletion per pod when
	// opts.Shims is nil (see shim.go).
	shims keylock.Locks
	// leases are the leases of container creations (see lease.go).
	leases *creationLeases
}

// New returns a Runtime over a loaded store, with the names of its
// containers bound. Call CleanupInterrupted and Reconcile before serving.
func New(opts Options) *Runtime {
	r := &Runtime{
		opts: opts, monitors: map[string]*monitor{}, oomed: map[string]bool{}, removals: map[string]*removal{},
		closed: make(chan struct{}), names: names.New(),
	}
	r.leases = newCreationLeases(opts.Client.LeasesService(), opts.Client.DefaultNamespace())
	for _, c := range opts.Store.List() {
		if c.Name != "" {
			r.names.Bind(c.Name, c.ID)
		}
	}
	return r
}

// locked runs fn on container id (or a unique prefix of it) with the
// container's lifecycle lock held; fn sees the record as it is under the
// lock. An unknown container is an errdefs.ErrNotFound.
func (r *Runtime) locked(id string, fn func(Container) error) error {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return err
	}
	unlock := r.opts.Store.Lock(c.ID)
	defer unlock()
	if c, err = r.opts.Store.Get(c.ID); err != nil {
		return err
	}
	return fn(c)
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
	return r.locked(id, func(c Container) error { return r.start(ctx, c) })
}

func (r *Runtime) start(ctx context.Context, c Container) error {
	id := c.ID
	if c.State != runtimeapi.ContainerState_CONTAINER_CREATED || r.monitorOf(id) != nil {
		return fmt.Errorf("container %s is %s, not created: %w", id, c.State, errdefs.ErrFailedPrecondition)
	}
	spans := timing.Start(ctx, "StartContainer")
	defer spans.End()
	// The start is announced, and the container recorded running, with
	// plugin sync held off.
	unblock := r.hooks().BlockSync()
	defer unblock()
	err := r.hooks().StartContainer(ctx, c)
	spans.Step("nri")
	var task containerd.Task
	var exitC <-chan containerd.ExitStatus
	var startedAt time.Time
	if err == nil {
		task, exitC, startedAt, err = r.startTask(ctx, c, spans)
	}
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
		} else {
			r.hooks().Notify(context.WithoutCancel(ctx), Stopped, c)
		}
		return err
	}
	m, _ := r.arm(ctx, id, task, exitC, startedAt)
	if err := r.recordStart(context.WithoutCancel(ctx), id, startedAt, m.pid); err != nil {
		return fmt.Errorf("container %s runs, but recording its start failed (it is retried): %w", id, err)
	}
	spans.Step("record")
	if c, err := r.opts.Store.Get(id); err == nil {
		r.hooks().Notify(ctx, PostStart, c)
	}
	spans.Step("nri")
	return nil
}

// startTask creates c's task and starts it, with a wait in place before
// the start so even an instant exit is seen. startedAt is taken before the
// start, so it is never after the exit the shim reports. On error no task
// is left.
func (r *Runtime) startTask(ctx context.Context, c Container, spans *timing.Spans) (_ containerd.Task, _ <-chan containerd.ExitStatus, startedAt time.Time, retErr error) {
	// The guard is written before the task exists and stays until
	// Remove, even if the start fails. Its write (a containerd metadata
	// transaction) overlaps loading the container and preparing its IO.
	guardErr := make(chan error, 1)
	go func() { guardErr <- r.guard(ctx, c.ID) }()
	cc, creator, err := r.prepareTask(ctx, c)
	if err == nil {
		spans.Step("load-io")
	}
	if gerr := <-guardErr; err == nil {
		err = gerr
	}
	if err != nil {
		r.cleanupAttach(ctx, c.ID)
		return nil, nil, startedAt, err
	}
	spans.Step("guard")
	defer func() {
		if retErr != nil {
			r.cleanupAttach(ctx, c.ID)
		}
	}()
	task, err := r.newTaskInPod(ctx, c, cc, creator, spans)
	if err != nil {
		return nil, nil, startedAt, fmt.Errorf("creating task: %w", err)
	}
	spans.Step("create-task")
	cleanup := context.WithoutCancel(ctx)
	exitC, err := task.Wait(cleanup)
	if err != nil {
		_ = r.deleteTaskInPod(cleanup, c.PodID, task, containerd.WithProcessKill)
		return nil, nil, startedAt, fmt.Errorf("waiting on task: %w", err)
	}
	spans.Step("wait")
	startedAt = time.Now()
	if err := task.Start(ctx); err != nil {
		_ = r.deleteTaskInPod(cleanup, c.PodID, task, containerd.WithProcessKill)
		return nil, nil, startedAt, fmt.Errorf("starting task: %w", err)
	}
	spans.Step("start-task")
	return task, exitC, startedAt, nil
}

// prepareTask loads c's containerd container and makes its task IO (with
// its attach paths); on error the caller cleans up the attach paths.
func (r *Runtime) prepareTask(ctx context.Context, c Container) (containerd.Container, cio.Creator, error) {
	cc, err := r.opts.Client.LoadContainer(ctx, c.ID)
	if err != nil {
		return nil, nil, err
	}
	attach, err := r.prepareAttach(c)
	if err != nil {
		return nil, nil, err
	}
	creator, err := r.opts.LogIO(c, attach)
	if err != nil {
		return nil, nil, err
	}
	return cc, creator, nil
}

// Stop sends the container's stop signal, waits up to timeout for it to
// exit, then kills it. Stopping a container that is not running succeeds.
// It returns once the exit is recorded: the container's processes are
// gone, and its task is being deleted (a pod's stop, and the background
// part of Remove, wait for that).
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	err := r.locked(id, func(c Container) error { return r.stop(ctx, c, timeout) })
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// StopInPod kills the running containers of pod podID and returns once
// their tasks are deleted.
func (r *Runtime) StopInPod(ctx context.Context, podID string) error {
	inPod := r.opts.Store.InPod(podID)
	for _, c := range inPod {
		if err := r.Stop(ctx, c.ID, 0); err != nil {
			return fmt.Errorf("stopping container %s: %w", c.ID, err)
		}
	}
	for _, c := range inPod {
		if err := r.released(ctx, c.ID); err != nil {
			return fmt.Errorf("stopping container %s: %w", c.ID, err)
		}
	}
	return nil
}

// released waits until container id has no armed monitor: its exit is
// recorded and its task deleted (or it never ran).
func (r *Runtime) released(ctx context.Context, id string) error {
	m := r.monitorOf(id)
	if m == nil {
		return nil
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runtime) stop(ctx context.Context, c Container, timeout time.Duration) error {
	id := c.ID
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
	select {
	case <-m.exited:
		// Recorded; the monitor is deleting the task.
		return nil
	default:
	}
	spans := timing.Start(ctx, "stop")
	defer spans.End()
	done := m.exited
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	spans.Step("load")
	task, err := cc.Task(ctx, nil)
	if err != nil {
		return exitedOr(done, fmt.Errorf("loading task: %w", err))
	}
	spans.Step("task")
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
		spans.Step("signal")
		select {
		case <-done:
			spans.Step("exit")
			return nil
		case <-time.After(timeout):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return exitedOr(done, fmt.Errorf("killing container: %w", err))
	}
	spans.Step("kill")
	select {
	case <-done:
		spans.Step("exit")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exitRace is how long a failed signal waits for the exit it raced with:
// a container exiting on its own takes its shim's connection with it.
const exitRace = 5 * time.Second

// exitedOr returns nil when the container's exit is recorded (exited is
// closed) within exitRace, else err.
func exitedOr(exited <-chan struct{}, err error) error {
	select {
	case <-exited:
		return nil
	case <-time.After(exitRace):
		return err
	}
}

// Update applies new resources to a running container's task and records
// them.
// NRI plugins see the update first and may change res.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources, cri *runtimeapi.LinuxContainerResources) error {
	return r.locked(id, func(c Container) error {
		adjusted, err := r.hooks().UpdateContainer(ctx, c, res)
		if err != nil {
			return err
		}
		if err := r.update(ctx, c.ID, adjusted, cri); err != nil {
			return err
		}
		if c, err := r.opts.Store.Get(c.ID); err == nil {
			r.hooks().Notify(ctx, PostUpdate, c)
		}
		return nil
	})
}

// UpdateResources applies res to container id as Update does, without
// NRI hooks and with its recorded CRI resources kept: for updates NRI
// plugins ask for.
func (r *Runtime) UpdateResources(ctx context.Context, id string, res *specs.LinuxResources) error {
	return r.locked(id, func(c Container) error { return r.update(ctx, c.ID, res, nil) })
}

// Evict stops container id at once, for an NRI plugin that evicts it.
func (r *Runtime) Evict(ctx context.Context, id string) error { return r.Stop(ctx, id, 0) }

// update applies res to container id; cri, if not nil, is recorded as its
// resources.
func (r *Runtime) update(ctx context.Context, id string, res *specs.LinuxResources, cri *runtimeapi.LinuxContainerResources) error {
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
	if m := r.monitorOf(id); m != nil {
		task, err := cc.Task(ctx, nil)
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err == nil {
			// A container exiting meanwhile (its shim may go with it) only
			// has its record updated.
			if err := task.Update(ctx, containerd.WithResources(res)); err != nil && !errdefs.IsNotFound(err) {
				if err := exitedOr(m.exited, err); err != nil {
					return fmt.Errorf("updating running container: %w", err)
				}
			}
		}
	}
	if cri == nil {
		return nil
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
