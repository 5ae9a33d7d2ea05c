package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/timing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Removal. Remove answers once the removal is recorded, not once it is
// done: deleting the task of a container that just exited takes its exit
// monitor 100-300 ms (runc delete, the rootfs unmount, and containerd
// running the shim binary's cleanup once the task's connection closes),
// and StopContainer returns before that. So Remove stops the container,
// removes its image volumes (its processes are gone), marks its containerd
// container as being removed (Store.MarkRemoving, one write), drops it
// from the index, frees its name, tells NRI plugins and the event stream,
// and answers; a finisher then waits for the monitor, deletes what is
// left of the task, the containerd container with its rootfs snapshot,
// the exit guard and the attach paths.
//
// Crash safety: a crash before the mark leaves the container as it was
// (the caller's retry removes it); after it, Load never indexes the
// container again and Reconcile (at start-up and after every reconnect)
// finishes the removal. A new container of the same name can be created
// at once: it has a new ID. RemoveInPod waits for the removals of its pod,
// so a pod's removal (and the release of its shim group) still comes
// after every task of it is gone.

// removal is one removal finishing in the background.
type removal struct {
	podID string
	// done is closed when the finisher ends; err is then why it gave
	// up (nil when the removal is finished). Runtime.mu guards err.
	done chan struct{}
	err  error
}

// finishBackoffMax bounds the wait between two attempts of a finisher.
const finishBackoffMax = 30 * time.Second

// Remove kills the container if it runs and removes it with its rootfs
// (the removal finishes in the background; see above). Removing a missing
// container succeeds.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	err := r.locked(id, func(c Container) error { return r.remove(ctx, c) })
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// RemoveInPod removes every container of pod podID and returns once their
// removals are finished.
func (r *Runtime) RemoveInPod(ctx context.Context, podID string) error {
	for _, c := range r.opts.Store.InPod(podID) {
		if err := r.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("removing container %s: %w", c.ID, err)
		}
	}
	return r.awaitRemovals(ctx, podID)
}

func (r *Runtime) remove(ctx context.Context, c Container) error {
	id := c.ID
	if err := r.stop(ctx, c, 0); err != nil {
		return err
	}
	spans := timing.Start(ctx, "remove")
	defer spans.End()
	if cur, err := r.opts.Store.Get(id); err == nil {
		c = cur
	}
	if c.State == runtimeapi.ContainerState_CONTAINER_EXITED && hasImageVolumes(c) {
		// Its processes are gone, so nothing uses its image volumes: they
		// go before the answer, as the caller may check.
		if err := r.removeImageVolumes(ctx, id); err != nil {
			return err
		}
		spans.Step("image-volumes")
	}
	if err := r.opts.Store.MarkRemoving(ctx, id); err != nil {
		return err
	}
	spans.Step("mark")
	unblock := r.hooks().BlockSync()
	defer unblock()
	if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
		// It never ran: plugins hear of its stop here.
		r.hooks().Notify(ctx, Stopped, c)
	}
	r.opts.Store.Drop(id)
	r.names.Release(c.Name, id)
	r.startFinisher(ctx, c)
	r.hooks().Notify(ctx, Removed, c)
	r.publish(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	return nil
}

// hasImageVolumes reports whether c's config mounts an image.
func hasImageVolumes(c Container) bool {
	for _, m := range c.Config.GetMounts() {
		if m.GetImage() != nil {
			return true
		}
	}
	return false
}

// startFinisher registers the removal of c and finishes it in the
// background. It stops early when the runtime closes.
func (r *Runtime) startFinisher(ctx context.Context, c Container) {
	rm := &removal{podID: c.PodID, done: make(chan struct{})}
	r.mu.Lock()
	r.removals[c.ID] = rm
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("containerid", c.ID))
	r.finishers.Add(1)
	go func() {
		defer r.finishers.Done()
		defer cancel()
		go func() {
			select {
			case <-r.closed:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := r.finishRemoval(ctx, c.ID, c.PodID)
		r.mu.Lock()
		rm.err = err
		if err == nil {
			delete(r.removals, c.ID)
		}
		r.mu.Unlock()
		close(rm.done)
	}()
}

// finishRemoval waits for container id's monitor to release it, then deletes
// what is left, retrying until it succeeds or ctx ends.
func (r *Runtime) finishRemoval(ctx context.Context, id, podID string) error {
	spans := timing.Start(ctx, "remove-finish")
	defer spans.End()
	if m := r.monitorOf(id); m != nil {
		select {
		case <-m.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the task of container %s to be deleted: %w", id, ctx.Err())
		}
		spans.Step("released")
	}
	backoff := retryMin
	for {
		err := r.deleteRemoved(ctx, id, podID, spans)
		if err == nil || ctx.Err() != nil {
			return err
		}
		log.G(ctx).WithError(err).Warn("finishing the removal of a container; retrying")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, finishBackoffMax)
	}
}

// deleteRemoved deletes what is left of container id, of pod podID,
// whose removal is recorded: its task, image volumes, containerd
// container with its rootfs snapshot, exit guard and attach paths. Each
// step tolerates what an earlier attempt already did.
func (r *Runtime) deleteRemoved(ctx context.Context, id, podID string, spans *timing.Spans) error {
	cc, err := r.opts.Client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		cc = nil
	} else if err != nil {
		return err
	}
	if cc != nil {
		if task, err := cc.Task(ctx, nil); err == nil {
			if err := r.deleteTaskInPod(ctx, podID, task, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("deleting task: %w", err)
			}
		}
		spans.Step("task")
	}
	// The task is gone: nothing uses the image volumes.
	if err := r.removeImageVolumes(ctx, id); err != nil {
		return err
	}
	if cc != nil {
		if err := cc.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting container: %w", err)
		}
		spans.Step("container")
	}
	if err := r.unguard(ctx, id); err != nil {
		return err
	}
	spans.Step("guard")
	r.cleanupAttach(ctx, id)
	return nil
}

// awaitRemovals returns once every removal of pod podID in the
// background is finished, or with the error of one that gave up.
func (r *Runtime) awaitRemovals(ctx context.Context, podID string) error {
	r.mu.Lock()
	pending := map[string]*removal{}
	for id, rm := range r.removals {
		if rm.podID == podID {
			pending[id] = rm
		}
	}
	r.mu.Unlock()
	var errs []error
	for id, rm := range pending {
		select {
		case <-rm.done:
		case <-ctx.Done():
			return fmt.Errorf("container %s is still being removed: %w", id, ctx.Err())
		}
		r.mu.Lock()
		err := rm.err
		r.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// finishRemovals finishes the recorded removals that no finisher is
// working on: those a crash or a shutdown interrupted, and those whose
// finisher gave up.
func (r *Runtime) finishRemovals(ctx context.Context) error {
	removing, err := r.opts.Store.Removing(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for id, podID := range removing {
		r.mu.Lock()
		rm := r.removals[id]
		r.mu.Unlock()
		if rm != nil {
			select {
			case <-rm.done:
			default:
				continue // its finisher is at work
			}
		}
		spans := timing.Start(ctx, "remove-finish")
		err := r.deleteRemoved(ctx, id, podID, spans)
		spans.End()
		if err != nil {
			errs = append(errs, fmt.Errorf("finishing the removal of container %s: %w", id, err))
			continue
		}
		r.mu.Lock()
		if r.removals[id] == rm {
			delete(r.removals, id)
		}
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}
