package container

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Recover reattaches to the tasks of containers recorded as running after a
// slipwayd restart: a task that still runs is monitored again; one that
// exited while slipwayd was away has its exit recorded now.
func (r *Runtime) Recover(ctx context.Context) {
	for _, c := range r.opts.Store.List() {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if err := r.recoverOne(ctx, c); err != nil {
			log.G(ctx).WithError(err).WithField("containerid", c.ID).Warn("recovering container")
		}
	}
}

func (r *Runtime) recoverOne(ctx context.Context, c Container) error {
	waitCtx := context.WithoutCancel(ctx)
	cc, err := r.opts.Client.LoadContainer(ctx, c.ID)
	if err != nil {
		return err
	}
	task, err := cc.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		// The task is gone with its exit status: the shim died or the node
		// rebooted.
		r.recordExit(waitCtx, c.ID, 255, time.Time{})
		return nil
	}
	if err != nil {
		return err
	}
	exitC, err := task.Wait(waitCtx)
	if err != nil {
		return err
	}
	done := r.track(c.ID)
	go r.monitor(waitCtx, c.ID, task, exitC, done)
	return nil
}

// WatchOOM records containerd's OOM events so the exits they cause are
// reported as OOMKilled. It runs until ctx is done, resubscribing after
// the stream breaks (containerd restarted).
func (r *Runtime) WatchOOM(ctx context.Context, namespace string) {
	for ctx.Err() == nil {
		r.watchOOMOnce(ctx, namespace)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Runtime) watchOOMOnce(ctx context.Context, namespace string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	envelopes, errs := r.opts.Client.EventService().Subscribe(ctx, `topic=="/tasks/oom"`, `namespace==`+namespace)
	for {
		select {
		case env, ok := <-envelopes:
			if !ok || env == nil {
				return
			}
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			if oom, ok := v.(*apievents.TaskOOM); ok {
				r.markOOM(ctx, oom.ContainerID)
			}
		case <-errs:
			return
		}
	}
}

// markOOM flags a container's coming exit as an OOM kill, or fixes the
// reason of an exit already recorded.
func (r *Runtime) markOOM(ctx context.Context, id string) {
	r.mu.Lock()
	_, running := r.exited[id]
	if running {
		r.oomed[id] = true
	}
	r.mu.Unlock()
	if running {
		return
	}
	c, err := r.opts.Store.Get(id)
	if err != nil || c.State != runtimeapi.ContainerState_CONTAINER_EXITED || c.Reason == ReasonOOMKilled {
		return
	}
	c.Reason = ReasonOOMKilled
	if err := r.opts.Store.Update(ctx, c); err != nil {
		log.G(ctx).WithError(err).WithField("containerid", id).Warn("recording OOM kill")
	}
}

// Task returns a running container's task, for exec and stats.
func (r *Runtime) Task(ctx context.Context, id string) (containerd.Task, error) {
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return cc.Task(ctx, nil)
}
