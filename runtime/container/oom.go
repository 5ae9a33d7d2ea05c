package container

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// oomResubscribeEvery is how soon WatchOOM subscribes again after its
// stream broke. containerd keeps no events for late subscribers: an OOM
// kill in the gap after a containerd restart would be reported as Error,
// so the gap is kept short (it was 1 s, and a pod started right after a
// restart lost its OOMKilled reason).
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
