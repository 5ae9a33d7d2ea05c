package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.opts.ContainerStore.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	unlock := s.opts.ContainerStore.Lock(c.ID)
	defer unlock()
	if err := s.opts.Containers.Start(ctx, c.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}
