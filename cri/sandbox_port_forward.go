package cri

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PortForward prepares a streaming port-forward session into a ready pod's
// network namespace and returns its single-use URL on the streaming server.
// The ports are chosen by the client per stream; any port of the pod can
// be reached.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	for _, port := range req.GetPort() {
		if port <= 0 || port > 65535 {
			return nil, fmt.Errorf("port %d is out of range: %w", port, errdefs.ErrInvalidArgument)
		}
	}
	if s.opts.Streaming == nil {
		return nil, fmt.Errorf("streaming is not configured: %w", errdefs.ErrNotImplemented)
	}
	p, err := s.opts.Pods.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", p.ID, errdefs.ErrFailedPrecondition)
	}
	resolved := proto.CloneOf(req)
	resolved.PodSandboxId = p.ID
	return s.opts.Streaming.GetPortForward(resolved)
}
