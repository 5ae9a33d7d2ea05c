package cri

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopPodSandbox stops the pod's processes and releases its network (CNI
// DEL) and shm. Stopping a stopped or missing pod succeeds.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	p, unlock, err := s.lockPod(req.GetPodSandboxId())
	if err != nil || unlock == nil {
		return &runtimeapi.StopPodSandboxResponse{}, err
	}
	defer unlock()
	if err := s.stopPodLocked(ctx, p.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// lockPod finds the pod for Stop or Remove and takes its lifecycle lock. A
// missing pod gives a nil unlock and no error: both calls succeed on it.
func (s *Server) lockPod(id string) (pod.Sandbox, func(), error) {
	if id == "" {
		return pod.Sandbox{}, nil, fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	p, err := s.opts.Pods.Get(id)
	if errdefs.IsNotFound(err) {
		return pod.Sandbox{}, nil, nil
	}
	if err != nil {
		return pod.Sandbox{}, nil, err
	}
	return p, s.opts.Pods.Lock(p.ID), nil
}

// stopPodLocked stops pod id; the caller holds the pod's lock. It re-reads
// the pod, so a concurrent stop or remove that finished first is seen.
func (s *Server) stopPodLocked(ctx context.Context, id string) error {
	p, err := s.opts.Pods.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("podsandboxid", p.ID))
	if err := s.stopContainersOfPod(ctx, p.ID); err != nil {
		return err
	}
	// Killing the infra process and CNI DEL are independent: run both.
	var infraErr error
	var infraDone sync.WaitGroup
	if p.Infra {
		infraDone.Go(func() {
			if err := s.opts.Infra.Stop(ctx, p.ID); err != nil {
				infraErr = fmt.Errorf("stopping infra process: %w", err)
			}
		})
	}
	netErr := s.teardownNetwork(ctx, p)
	infraDone.Wait()
	if err := errors.Join(infraErr, netErr); err != nil {
		return err
	}
	if err := pod.UnmountShm(p.ShmPath); err != nil {
		return err
	}
	if p.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		return nil
	}
	p.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	return s.opts.Pods.Update(ctx, p)
}

// stopContainersOfPod kills the pod's running containers; kubelet stops
// them gracefully before it stops the pod.
func (s *Server) stopContainersOfPod(ctx context.Context, podID string) error {
	for _, c := range s.opts.ContainerStore.InPod(podID) {
		unlock := s.opts.ContainerStore.Lock(c.ID)
		err := s.opts.Containers.Stop(ctx, c.ID, 0)
		unlock()
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stopping container %s: %w", c.ID, err)
		}
	}
	return nil
}

// teardownNetwork runs CNI DEL for a pod with its own network namespace.
// DEL is idempotent, so stop and remove both run it: a failure is returned
// and kubelet's retry of the call retries it.
func (s *Server) teardownNetwork(ctx context.Context, p pod.Sandbox) error {
	if p.HostNetwork() || p.Namespaces[namespaces.Net] == "" {
		return nil
	}
	netPod, err := cniPod(p)
	if err != nil {
		// Bad annotations cannot have passed RunPodSandbox; DEL without them.
		netPod.ID, netPod.NetNS = p.ID, p.Namespaces[namespaces.Net]
	}
	if err := s.opts.Network.Teardown(ctx, netPod); err != nil {
		return fmt.Errorf("tearing down pod network: %w", err)
	}
	return nil
}
