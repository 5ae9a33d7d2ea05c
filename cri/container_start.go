package cri

import (
	"context"
	"fmt"

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
	err = s.opts.PodRuntime.WhileReady(c.PodID, func(pod.Sandbox) error {
		return s.opts.Containers.Start(ctx, c.ID)
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}
