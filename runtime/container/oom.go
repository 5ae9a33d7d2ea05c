package container

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// oomResubscribeEvery is how soon WatchOOM subscribes again after its
// stream broke. containerd keeps no events for late subscribers, so an OOM
// kill in the gap after a containerd restart has no event; the exit
// monitor then finds it in the cgroup's count (oomKilledByCgroup).
const oomResubscribeEvery = 100 * time.Millisecond

// WatchOOM records containerd's OOM events so the exits they cause are
// reported as OOMKilled. It runs until ctx is done, resubscribing after
// the stream breaks (containerd restarted).
func (r *Runtime) WatchOOM(ctx context.Context, namespace string) {
	for ctx.Err() == nil {
		r.watchOOMOnce(ctx, namespace)
		select {
		case <-ctx.Done():
		case <-time.After(oomResubscribeEvery):
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
	_, running := r.monitors[id]
	if running {
		r.oomed[id] = true
	}
	r.mu.Unlock()
	if running {
		return
	}
	changed := false
	_, err := r.opts.Store.Modify(ctx, id, func(c *Container) bool {
		changed = false
		if c.State != runtimeapi.ContainerState_CONTAINER_EXITED || c.Reason == ReasonOOMKilled {
			return false
		}
		c.Reason = ReasonOOMKilled
		changed = true
		return true
	})
	if err == nil && changed {
		r.opts.Metrics.OOMKill()
	}
	if err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("containerid", id).Warn("recording OOM kill")
	}
}

// sigkillExit is the exit code of a process ended by SIGKILL, as the OOM
// killer ends it.
const sigkillExit = 128 + 9

// oomKilledByCgroup tells whether the OOM killer has ended a process of the
// container's cgroup. An exit monitor asks it for a SIGKILLed container no
// TaskOOM event flagged: containerd keeps no events for late subscribers,
// so an OOM kill while WatchOOM resubscribes (after a containerd restart)
// has no event, but the cgroup, which lives until the task is deleted,
// still counts it.
func (r *Runtime) oomKilledByCgroup(ctx context.Context, id string) bool {
	c, err := r.opts.Store.Get(id)
	if err != nil || c.CgroupsPath == "" {
		return false
	}
	n, err := cgroupstats.OOMKills(c.CgroupsPath, r.opts.SystemdCgroup)
	if err != nil {
		log.G(ctx).WithError(err).WithField("containerid", id).Debug("reading the cgroup's OOM kill count")
		return false
	}
	return n > 0
}
