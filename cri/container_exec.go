package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Exec prepares a streaming exec session in a running container and
// returns its single-use URL on the streaming server.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd is required: %w", errdefs.ErrInvalidArgument)
	}
	if s.opts.Streaming == nil {
		return nil, fmt.Errorf("streaming is not configured: %w", errdefs.ErrNotImplemented)
	}
	id, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	resolved := proto.CloneOf(req)
	resolved.ContainerId = id
	return s.opts.Streaming.GetExec(resolved)
}

// runningContainer resolves a container ID (or unique prefix) to the ID of
// a running container.
func (s *Server) runningContainer(id string) (string, error) {
	c, err := s.opts.ContainerStore.Get(id)
	if err != nil {
		return "", err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return "", fmt.Errorf("container %s is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	return c.ID, nil
}
