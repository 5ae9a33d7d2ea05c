package cri

import (
	"context"
	"strings"

	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists pods, oldest first, filtered by ID (or ID prefix),
// state and label selector (every pair must match).
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	all := s.podView()
	out := make([]*runtimeapi.PodSandbox, 0, len(all))
	for _, p := range all {
		if !podMatches(p, f) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id:             p.ID,
			Metadata:       p.Config.GetMetadata(),
			State:          p.State,
			CreatedAt:      p.CreatedAt.UnixNano(),
			Labels:         p.Config.GetLabels(),
			Annotations:    p.Config.GetAnnotations(),
			RuntimeHandler: p.RuntimeHandler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// podView is every indexed pod record, oldest first, shared with the
// index (index.Index.View): read them, never change them.
func (s *Server) podView() []*pod.Sandbox {
	return s.opts.Pods.View(func(p *pod.Sandbox) int64 { return p.CreatedAt.UnixNano() })
}

func podMatches(p *pod.Sandbox, f *runtimeapi.PodSandboxFilter) bool {
	if f == nil {
		return true
	}
	if f.Id != "" && !strings.HasPrefix(p.ID, f.Id) {
		return false
	}
	if f.State != nil && f.State.State != p.State {
		return false
	}
	labels := p.Config.GetLabels()
	for k, v := range f.LabelSelector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
