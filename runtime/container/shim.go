package container

import (
	"context"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/slipway-dev/slipway/runtime/timing"
)

// The containers of a pod share one runc shim, which exits when its last
// task is deleted. The shim counts a task only once runc has created it,
// so a task being created while the pod's last task is deleted dies with
// the shim ("ttrpc: closed") and leaves its cgroup behind. Task creation
// and task deletion are therefore serialized per pod: a delete returns
// only after the shim has decided whether to exit (containerd waits for
// it), and a creation after that starts a new shim if needed.

// newTaskInPod creates container c's task under its pod's shim lock.
func (r *Runtime) newTaskInPod(ctx context.Context, c Container, cc containerd.Container, opts cio.Creator, spans *timing.Spans) (containerd.Task, error) {
	unlock, err := r.shims.Lock(ctx, c.PodID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	spans.Step("shim-lock")
	return cc.NewTask(ctx, opts)
}

// deleteTaskInPod deletes task, of a container of pod podID, under
// its pod's shim lock.
func (r *Runtime) deleteTaskInPod(ctx context.Context, podID string, task containerd.Task, opts ...containerd.ProcessDeleteOpts) error {
	unlock, err := r.shims.Lock(ctx, podID)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = task.Delete(ctx, opts...)
	return err
}

// podOf is the pod of container id, "" if it is unknown.
func (r *Runtime) podOf(id string) string {
	c, err := r.opts.Store.Get(id)
	if err != nil {
		return ""
	}
	return c.PodID
}
