package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveContainer kills the container if it runs and removes it with its
// writable layer. Removing a missing container succeeds.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.opts.ContainerStore.Get(req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Server) removeContainer(ctx context.Context, c container.Container) error {
	unlock := s.opts.ContainerStore.Lock(c.ID)
	defer unlock()
	if err := s.opts.Containers.Remove(ctx, c.ID); err != nil {
		return err
	}
	if p, err := s.opts.Pods.Get(c.PodID); err == nil {
		s.containerNames.Release(container.Name(p.Config.GetMetadata(), c.Config.GetMetadata()), c.ID)
	}
	return nil
}
