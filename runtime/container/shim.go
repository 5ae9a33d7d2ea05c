package container

import (
	"context"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/slipway-dev/slipway/runtime/timing"
)

// A runc shim exits when its last task is deleted, and counts a task only
// once runc has created it: a task being created while the shim's last
// task is deleted dies with the shim ("ttrpc: closed") and leaves its
// cgroup behind. Every task creation and deletion of a container therefore
// goes through Shims.Enter for its pod: a pod with a shim of its own has
// them serialized; a pod in a shim group (package shimgroup) has them wait
// until the group's keeper task runs, which keeps the shim from exiting,
// and then run concurrently with the other pods' of the group.

// Shims guards the shims of pods' containers (shimgroup.Groups).
type Shims interface {
	// Enter is called before a task of a container of pod podID is
	// created or deleted, and release after.
	Enter(ctx context.Context, podID string) (release func(), err error)
	// Sandbox is the containerd sandbox the containers of pod podID name
	// (containerd then puts their tasks in that sandbox's shim without
	// running the shim binary); "" for none.
	Sandbox(podID string) string
}

// enterShim enters pod podID's shim through r.opts.Shims, or, without
// it, serializes the pod's task creations and deletions.
func (r *Runtime) enterShim(ctx context.Context, podID string) (func(), error) {
	if r.opts.Shims != nil {
		return r.opts.Shims.Enter(ctx, podID)
	}
	return r.shims.Lock(ctx, podID)
}

// newTaskInPod creates container c's task, having entered its pod's shim.
func (r *Runtime) newTaskInPod(ctx context.Context, c Container, cc containerd.Container, opts cio.Creator, spans *timing.Spans) (containerd.Task, error) {
	release, err := r.enterShim(ctx, c.PodID)
	if err != nil {
		return nil, err
	}
	defer release()
	spans.Step("shim-enter")
	return cc.NewTask(ctx, opts)
}

// deleteTaskInPod deletes task, of a container of pod podID, having
// entered the pod's shim.
func (r *Runtime) deleteTaskInPod(ctx context.Context, podID string, task containerd.Task, opts ...containerd.ProcessDeleteOpts) error {
	release, err := r.enterShim(ctx, podID)
	if err != nil {
		return err
	}
	defer release()
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
