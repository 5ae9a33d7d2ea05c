package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Attach prepares a streaming attach session to a running container's
// main process and returns its single-use URL on the streaming server.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
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
	return s.opts.Streaming.GetAttach(resolved)
}
