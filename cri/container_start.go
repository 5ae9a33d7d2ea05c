package cri

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer starts a created container, while its pod is ready: with
// the pod's lock held, so a StopPodSandbox either comes after the start
// (and stops the container) or before it (and the start fails with
// FailedPrecondition), as on containerd.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.opts.ContainerStore.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	err = s.opts.PodRuntime.WhileReady(c.PodID, func(p pod.Sandbox) error {
		if err := s.opts.Containers.Start(ctx, c.ID); err != nil {
			return err
		}
		s.observePodStartup(p, c.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// observePodStartup records pod p's start-up, from its RunPodSandbox to
// now, when the container started is its first: no other container of the
// pod has a start recorded. It runs under the pod's lock, so two starts in
// one pod cannot both be first. (A pod whose started containers were all
// removed counts again with its next start; kubelet keeps the last exited
// container of each name.)
func (s *Server) observePodStartup(p pod.Sandbox, started string) {
	for _, other := range s.opts.ContainerStore.InPod(p.ID) {
		if other.ID != started && !other.StartedAt.IsZero() {
			return
		}
	}
	s.opts.Metrics.ObservePodStartup(time.Since(p.CreatedAt))
}
