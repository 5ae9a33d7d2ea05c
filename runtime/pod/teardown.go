package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/timing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Stop stops the pod's containers and infra process and releases its
// network and shm. Stopping a stopped or missing pod succeeds. The stop
// runs to its end even if ctx ends first (a client that gives up must not
// cut a CNI DEL in half); a retry joins the stop in flight.
func (r *Runtime) Stop(ctx context.Context, id string) error {
	return r.detached(ctx, "stop", id, r.stopLocked)
}

// Remove stops the pod if it runs and removes everything of it: its
// containers, infra, network (DEL again, idempotent), namespace pins,
// files and record. Removing a missing pod succeeds. Like Stop, it runs to
// its end whatever the caller does, and a retry joins it.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	return r.detached(ctx, "remove", id, func(ctx context.Context, id string) error {
		if err := r.stopLocked(ctx, id); err != nil {
			return err
		}
		return r.removeLocked(ctx, id)
	})
}

// detached runs op on pod id with its lock held, on a context that
// outlives ctx (bounded by teardownTimeout), joining an identical call in
// flight. It returns op's error, or ctx's if ctx ends first.
func (r *Runtime) detached(ctx context.Context, op, id string, fn func(context.Context, string) error) error {
	if id == "" {
		return fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	p, err := r.opts.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("podsandboxid", p.ID))
	result := r.teardowns.DoChan(op+"/"+p.ID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		unlock := r.opts.Store.Lock(p.ID)
		defer unlock()
		return nil, fn(ctx, p.ID)
	})
	select {
	case res := <-result:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopLocked stops pod id; the caller holds the pod's lock. It re-reads
// the pod, so a stop or remove that finished first is seen.
func (r *Runtime) stopLocked(ctx context.Context, id string) error {
	p, err := r.opts.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	spans := timing.Start(ctx, "stop-pod")
	defer spans.End()
	if err := r.opts.Containers.StopInPod(ctx, p.ID); err != nil {
		return err
	}
	spans.Step("containers")
	if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		// Plugins hear of the stop with the containers stopped and the
		// pod still standing, until it is recorded stopped.
		unblock := r.hooks().BlockSync()
		defer unblock()
		r.hooks().StopPodSandbox(ctx, p)
		spans.Step("nri")
	}
	// The network's DEL (nearly all of a stop), the infra process's kill
	// with the shm unmount, and the NOTREADY record are independent, so
	// they overlap. The record may land before the DEL ends: a crash or
	// a failure then leaves a stopped pod still attached, which a retried
	// stop (it always runs the idempotent DEL), the pod's removal and
	// start-up reconciliation (cmd/slipwayd reconcilePods) detach. The
	// stop returns only once the DEL is done.
	var infraErr, recordErr error
	var others sync.WaitGroup
	others.Go(func() {
		if p.Infra {
			if err := r.opts.Infra.Stop(ctx, p.ID); err != nil {
				infraErr = fmt.Errorf("stopping infra process: %w", err)
				return
			}
		}
		infraErr = UnmountShm(p.ShmPath)
	})
	if p.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		stopped := p
		stopped.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		others.Go(func() { recordErr = r.opts.Store.Update(ctx, stopped) })
	}
	netErr := r.teardownNetwork(ctx, p)
	spans.Step("network")
	others.Wait()
	spans.Step("infra-shm-record")
	return errors.Join(netErr, infraErr, recordErr)
}

// removeLocked removes stopped pod id; the caller holds the pod's lock.
func (r *Runtime) removeLocked(ctx context.Context, id string) error {
	p, err := r.opts.Store.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	spans := timing.Start(ctx, "remove-pod")
	defer spans.End()
	if err := r.opts.Containers.RemoveInPod(ctx, p.ID); err != nil {
		return err
	}
	spans.Step("containers")
	if p.Infra {
		if err := r.opts.Infra.Remove(ctx, p.ID); err != nil {
			return fmt.Errorf("removing infra: %w", err)
		}
		spans.Step("infra")
	}
	if err := r.teardownNetwork(ctx, p); err != nil {
		return err
	}
	spans.Step("network")
	if err := unpinAll(p.Namespaces); err != nil {
		return err
	}
	spans.Step("unpin")
	if err := errors.Join(os.RemoveAll(p.Dir), os.RemoveAll(filepath.Join(r.opts.StateDir, p.ID))); err != nil {
		return fmt.Errorf("removing pod files: %w", err)
	}
	spans.Step("files")
	unblock := r.hooks().BlockSync()
	defer unblock()
	r.hooks().RemovePodSandbox(ctx, p)
	spans.Step("nri")
	if err := r.opts.Store.Delete(ctx, p.ID); err != nil {
		return err
	}
	spans.Step("record")
	r.names.Release(p.Name(), p.ID)
	if r.opts.ShimGroups != nil {
		// The pod is gone either way; a keeper left by a failure here is
		// deleted at the next start-up (shimgroup.Groups.Reconcile).
		if err := r.opts.ShimGroups.Release(ctx, p.ID); err != nil {
			log.G(ctx).WithError(err).Warn("releasing the pod's shim group")
		}
	}
	return nil
}

// teardownNetwork detaches a pod with its own network namespace. DEL is
// idempotent, so stop and remove both run it: a failure is returned and a
// retry of the call retries it.
func (r *Runtime) teardownNetwork(ctx context.Context, p Sandbox) error {
	if p.HostNetwork() || p.Namespaces[namespaces.Net] == "" {
		return nil
	}
	if err := r.opts.Network.Teardown(ctx, p); err != nil {
		return fmt.Errorf("tearing down pod network: %w", err)
	}
	return nil
}
