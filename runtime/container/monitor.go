package container

import (
	"context"
	"fmt"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	"github.com/slipway-dev/slipway/runtime/timing"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Exit monitors. Every container whose task may run has exactly one
// monitor, armed by Start or by Reconcile. A monitor follows its task
// through lost connections and containerd restarts (the shim keeps the
// exit status until the task is deleted), records the real exit code and
// time, and only then deletes the task: a crash at any point leaves either
// the recorded exit or a task that still holds it.

const (
	// retryMin and retryMax bound the backoff of a monitor waiting for
	// containerd to answer again.
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
	// lostMessage explains an exit whose task vanished with its status.
	lostMessage = "the container's task is gone with its exit status (its shim died or the node restarted)"
)

// monitor is the armed exit monitor of one container.
type monitor struct {
	// exited is closed once the exit is recorded or the container is
	// gone: the container is stopped (the shim killed every process of
	// it before it reported the exit) and StopContainer may return.
	exited   chan struct{}
	exitOnce sync.Once
	// done is closed after exited, once the task is deleted (its runc
	// state, cgroup and, for a pod's last task, its shim are gone) and
	// the monitor is released: what a pod's stop and the finisher of a
	// removal (remove.go) wait for.
	done chan struct{}
	// startedAt and pid are what Start saw, for a record Start could not
	// write (Reconcile writes it); zero when the monitor was armed later.
	startedAt time.Time
	pid       uint32
}

// arm registers a monitor for container id unless one is armed, and
// starts following task (or, when task is nil, the container's current
// task). It returns the container's monitor and whether it is new.
func (r *Runtime) arm(ctx context.Context, id string, task containerd.Task, exitC <-chan containerd.ExitStatus, startedAt time.Time) (*monitor, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.monitors[id]; ok {
		return m, false
	}
	m := &monitor{exited: make(chan struct{}), done: make(chan struct{}), startedAt: startedAt}
	if task != nil {
		m.pid = task.Pid()
	}
	r.monitors[id] = m
	// The monitor outlives the call that armed it, and logs as its own.
	ctx = log.WithLogger(context.WithoutCancel(ctx), log.L.WithField("containerid", id))
	go r.follow(ctx, id, m, task, exitC)
	return m, true
}

// monitorOf is container id's armed monitor, or nil.
func (r *Runtime) monitorOf(id string) *monitor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.monitors[id]
}

// follow waits for the exit of container id's task and records it. A
// broken wait (containerd died or restarted) is not an exit: it waits on
// the task again once containerd answers.
func (r *Runtime) follow(ctx context.Context, id string, m *monitor, task containerd.Task, exitC <-chan containerd.ExitStatus) {
	logger := log.G(ctx)
	backoff := retryMin
	for {
		if exitC == nil {
			var err error
			task, exitC, err = r.waitTask(ctx, id)
			switch {
			case isContainerGone(err):
				logger.Debug("container removed; monitor ends")
				r.disarm(id, m)
				return
			case errdefs.IsNotFound(err):
				logger.WithError(err).Warn("container task is gone with its exit status")
				r.killLeft(ctx, id)
				r.finish(ctx, id, m, nil, 255, time.Time{}, lostMessage)
				return
			case err != nil:
				logger.WithError(err).Debug("waiting for containerd to follow the container's task")
				if backoff = r.sleep(backoff); r.stopped() {
					return
				}
				continue
			}
		}
		code, at, err := (<-exitC).Result()
		if err != nil {
			logger.WithError(err).Info("lost the wait on the container's task; waiting again")
			exitC = nil
			if backoff = r.sleep(backoff); r.stopped() {
				return
			}
			continue
		}
		r.finish(ctx, id, m, task, code, at, "")
		return
	}
}

// killLeftWait bounds how long killLeft waits for the processes it killed.
const killLeftWait = 10 * time.Second

// killLeft SIGKILLs the processes left in container id's cgroup and waits
// until none is left (at most killLeftWait), so a lost task's exit is
// recorded only once the container has stopped: containerd reports a task
// gone as soon as its shim dies, while its processes run on until
// containerd's clean-up of the dead shim (runc delete --force) reaches
// them. A cgroup that cannot be read has nothing left to kill.
func (r *Runtime) killLeft(ctx context.Context, id string) {
	c, err := r.opts.Store.Get(id)
	if err != nil || c.CgroupsPath == "" {
		return
	}
	deadline := time.Now().Add(killLeftWait)
	for {
		pids, err := cgroupstats.Pids(c.CgroupsPath, r.opts.SystemdCgroup)
		if err != nil || len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			log.G(ctx).WithField("pids", pids).Warn("processes of a lost task outlived SIGKILL; recording its exit anyway")
			return
		}
		for _, pid := range pids {
			_ = unix.Kill(int(pid), unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errContainerGone marks a NotFound for the container itself (removed),
// as opposed to its task.
type errContainerGone struct{ err error }

func (e errContainerGone) Error() string { return e.err.Error() }
func (e errContainerGone) Unwrap() error { return e.err }

func isContainerGone(err error) bool {
	_, ok := err.(errContainerGone)
	return ok
}

// waitTask loads container id's task and waits on it.
func (r *Runtime) waitTask(ctx context.Context, id string) (containerd.Task, <-chan containerd.ExitStatus, error) {
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, errContainerGone{err}
		}
		return nil, nil, err
	}
	task, err := cc.Task(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		return nil, nil, err
	}
	return task, exitC, nil
}

// finish records a real exit (code and time from the shim; a zero time
// means now), retrying until containerd takes the record, then deletes the
// task and releases the monitor. message is set for a lost task.
func (r *Runtime) finish(ctx context.Context, id string, m *monitor, task containerd.Task, code uint32, at time.Time, message string) {
	if at.IsZero() {
		at = time.Now()
	}
	r.mu.Lock()
	oomed := r.oomed[id]
	delete(r.oomed, id)
	r.mu.Unlock()
	if !oomed && code == sigkillExit && message == "" {
		oomed = r.oomKilledByCgroup(ctx, id)
	}
	reason := ReasonError
	switch {
	case oomed:
		reason = ReasonOOMKilled
	case code == 0 && message == "":
		reason = ReasonCompleted
	}
	spans := timing.Start(ctx, "exit")
	defer spans.End()
	backoff := retryMin
	var c Container
	// Each attempt records the exit and tells NRI plugins of it with
	// plugin sync held off, never across a retry's wait; changed is
	// whether the attempt recorded it.
	for {
		unblock := r.hooks().BlockSync()
		changed := false
		var err error
		c, err = r.opts.Store.Modify(ctx, id, func(c *Container) bool {
			changed = false
			if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				return false
			}
			changed = true
			if c.StartedAt.IsZero() {
				c.StartedAt = m.startedAt
			}
			c.State, c.ExitCode, c.Reason, c.Message, c.Pid = runtimeapi.ContainerState_CONTAINER_EXITED, int32(code), reason, message, 0
			// The shim's clock and ours can disagree by a little for an
			// instant exit: an exit is never before the start.
			c.FinishedAt = at
			if c.FinishedAt.Before(c.StartedAt) {
				c.FinishedAt = c.StartedAt
			}
			return true
		})
		if err == nil && changed && reason == ReasonOOMKilled {
			r.opts.Metrics.OOMKill()
		}
		if err == nil && changed && !r.stopped() {
			r.hooks().Notify(ctx, Stopped, c)
		}
		unblock()
		if err == nil || errdefs.IsNotFound(err) || r.stopped() {
			break
		}
		log.G(ctx).WithError(err).Warn("recording container exit; retrying")
		backoff = r.sleep(backoff)
	}
	spans.Step("record")
	if r.stopped() {
		// slipwayd is shutting down: the next one finds the exit in the
		// task, which is kept.
		return
	}
	// The exit is recorded: a stop waiting for it returns while the task
	// is deleted. A crash from here on leaves an exited container with a
	// task, which Reconcile deletes.
	m.markExited()
	if c.ID != "" {
		r.publish(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
	}
	if task != nil {
		if err := r.deleteTaskInPod(ctx, c.PodID, task); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("deleting exited task (Reconcile retries)")
		}
		spans.Step("delete-task")
		// Delete closes the task's IO only when it succeeds; a task removed
		// meanwhile must release it too (LogIO's may hold a logger open).
		if pio := task.IO(); pio != nil {
			_ = pio.Close()
		}
	}
	r.cleanupAttach(ctx, id)
	r.disarm(id, m)
	spans.Step("release")
}

// markExited wakes the waiters for m's exit; it is idempotent.
func (m *monitor) markExited() { m.exitOnce.Do(func() { close(m.exited) }) }

// disarm releases container id's monitor m and wakes its waiters.
func (r *Runtime) disarm(id string, m *monitor) {
	r.mu.Lock()
	if r.monitors[id] == m {
		delete(r.monitors, id)
	}
	r.mu.Unlock()
	m.markExited()
	close(m.done)
}

// sleep waits d, or less if the runtime is closed, and returns the next
// backoff.
func (r *Runtime) sleep(d time.Duration) time.Duration {
	select {
	case <-r.closed:
	case <-time.After(d):
	}
	return min(d*2, retryMax)
}

func (r *Runtime) stopped() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// Close stops the monitors without recording anything: the containers
// keep running in their shims, and the next slipwayd's Reconcile follows
// them again. Removals finishing in the background stop too (the next
// Reconcile finishes them); Close returns once they have. Call it before
// closing the containerd client.
func (r *Runtime) Close() {
	r.closeOnce.Do(func() { close(r.closed) })
	r.finishers.Wait()
}

// Reconcile makes the records agree with containerd's tasks: it arms a
// monitor for every container whose task may run and has none, records
// the start a failed record write left out, deletes the tasks of exited
// containers that a crash left behind, and finishes the removals a crash
// or a shutdown interrupted. Call it at start-up and after every
// reconnect to containerd; it is idempotent.
func (r *Runtime) Reconcile(ctx context.Context) error {
	var errs []error
	for _, c := range r.opts.Store.List() {
		if err := r.reconcileOne(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.ID, err))
		}
	}
	if err := r.finishRemovals(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("reconciling %d of the containers: %w", len(errs), errs[0])
	}
	return nil
}

func (r *Runtime) reconcileOne(ctx context.Context, c Container) error {
	switch c.State {
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return r.deleteStaleTask(ctx, c.ID)
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		if m := r.monitorOf(c.ID); m != nil {
			return r.recordStart(ctx, c.ID, m.startedAt, m.pid)
		}
		// Created with a task: a crash came between the task's start
		// and its record.
		task, err := r.Task(ctx, c.ID)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		status, err := task.Status(ctx)
		if err != nil {
			return err
		}
		if status.Status == containerd.Created {
			return nil
		}
		m, _ := r.arm(ctx, c.ID, nil, nil, time.Now())
		return r.recordStart(ctx, c.ID, m.startedAt, task.Pid())
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		r.arm(ctx, c.ID, nil, nil, time.Time{})
	}
	return nil
}

// recordStart records a started container as running, unless its record
// moved on already.
func (r *Runtime) recordStart(ctx context.Context, id string, startedAt time.Time, pid uint32) error {
	c, err := r.opts.Store.Modify(ctx, id, func(c *Container) bool {
		if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			return false
		}
		c.State, c.StartedAt, c.Pid = runtimeapi.ContainerState_CONTAINER_RUNNING, startedAt, pid
		return true
	})
	if err != nil {
		return err
	}
	if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		r.publish(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, c)
	}
	return nil
}

// deleteStaleTask deletes the task of an exited container, left when a
// crash came between recording the exit and deleting the task.
func (r *Runtime) deleteStaleTask(ctx context.Context, id string) error {
	if r.monitorOf(id) != nil {
		return nil
	}
	task, err := r.Task(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.deleteTaskInPod(ctx, r.podOf(id), task, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting the task of an exited container: %w", err)
	}
	r.cleanupAttach(ctx, id)
	return nil
}

// WatchContainerd runs Reconcile whenever containerd answers again after
// it did not, until ctx is done: a restarted containerd may have lost
// nothing, but any wait broken meanwhile is re-armed and any record write
// that failed is retried.
func (r *Runtime) WatchContainerd(ctx context.Context, every time.Duration) {
	// up is whether containerd answered at the last tick; reconciled is
	// whether Reconcile succeeded since it last came back.
	up, reconciled := true, true
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		pingCtx, cancel := context.WithTimeout(ctx, every)
		serving, err := r.opts.Client.IsServing(pingCtx)
		cancel()
		switch answering := err == nil && serving; {
		case !answering:
			up = false
			continue
		case !up:
			up, reconciled = true, false
			r.opts.Metrics.ContainerdReconnected()
			log.G(ctx).Info("containerd answers again; reconciling containers")
		}
		if !reconciled {
			if err := r.Reconcile(ctx); err != nil {
				log.G(ctx).WithError(err).Warn("reconciling containers (retried at the next tick)")
				continue
			}
			reconciled = true
		}
	}
}
