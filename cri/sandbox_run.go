package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RunPodSandbox validates the pod's config and runs it (pod.Runtime.Run:
// pinned namespaces, no pause image; a retried call with the same name
// returns the first call's pod).
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if err := validatePodConfig(req.GetConfig(), s.opts.CgroupDriver); err != nil {
		return nil, err
	}
	if err := checkUserNamespaceSupport(req.GetConfig(), s.opts.UserNamespaces); err != nil {
		return nil, err
	}
	id, err := s.opts.PodRuntime.Run(ctx, req.GetConfig(), req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}
