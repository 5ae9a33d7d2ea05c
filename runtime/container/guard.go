package container

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
)

// Exit guards. When containerd starts, it reaps every shim task whose
// process has ended unless a sandbox record has the task's ID
// (shouldCleanupShim in containerd's core/runtime/v2): a container that
// exited while containerd was down would lose its exit status with the
// task. So each container that has had a task has a sandbox record of its
// own ID, labelled as a guard, from before its task starts (Start writes
// it while the task is created) to Remove; its task is then kept with its
// exit status until the container's monitor records it and deletes the
// task. A container that never started has no task to guard, so Create
// writes no guard.

// guardKind labels exit guards (KindLabel).
const guardKind = "exit-guard"

// guard records container id's exit guard.
func (r *Runtime) guard(ctx context.Context, id string) error {
	_, err := r.opts.Client.SandboxStore().Create(ctx, sandbox.Sandbox{
		ID:        id,
		Labels:    map[string]string{KindLabel: guardKind},
		Runtime:   sandbox.RuntimeOpts{Name: RuntimeName},
		CreatedAt: time.Now(),
		UpdatedAt: time.Now(),
	})
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("recording exit guard: %w", err)
	}
	return nil
}

// unguard deletes container id's exit guard; a missing one is fine.
func (r *Runtime) unguard(ctx context.Context, id string) error {
	if err := r.opts.Client.SandboxStore().Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting exit guard: %w", err)
	}
	return nil
}

// removeStaleGuards deletes the guards of containers that do not exist
// (a crash between a guard and its container, either way).
func (r *Runtime) removeStaleGuards(ctx context.Context) error {
	guards, err := r.opts.Client.SandboxStore().List(ctx, fmt.Sprintf(`labels."%s"==%s`, KindLabel, guardKind))
	if err != nil {
		return fmt.Errorf("listing exit guards: %w", err)
	}
	for _, g := range guards {
		if _, err := r.opts.Client.ContainerService().Get(ctx, g.ID); errdefs.IsNotFound(err) {
			if err := r.unguard(ctx, g.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
