package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources applies new Linux resources to a container: to
// its running task and to its stored spec.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	if req.GetLinux() == nil {
		return nil, fmt.Errorf("linux resources are required: %w", errdefs.ErrInvalidArgument)
	}
	res, err := spec.ResourcesUpdate(req.GetLinux())
	if err != nil {
		return nil, err
	}
	if err := s.opts.Containers.Update(ctx, req.GetContainerId(), res, req.GetLinux()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}
