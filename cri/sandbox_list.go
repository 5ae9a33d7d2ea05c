package cri

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists pods, oldest first, filtered by ID (or ID prefix),
// state and label selector (every pair must match). Like ListContainers,
// it answers with each record's message encoded once (listEncodings), as
// the response's unknown fields: decode it to read it in process.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	var keep func(*pod.Sandbox) bool
	if f.GetId() != "" || f.GetState() != nil || len(f.GetLabelSelector()) > 0 {
		keep = func(p *pod.Sandbox) bool { return podMatches(p, f) }
	}
	entries, err := s.listedPods.entries(s.podView(), keep, podsField, listedPod)
	if err != nil {
		return nil, err
	}
	return encodedResponse(&runtimeapi.ListPodSandboxResponse{}, entries), nil
}

// podsField is ListPodSandboxResponse's items.
var podsField = (&runtimeapi.ListPodSandboxResponse{}).ProtoReflect().Descriptor().Fields().ByName("items")

// listedPod is the CRI message of pod record p; it depends on the record
// alone (listEncodings).
func listedPod(p *pod.Sandbox) proto.Message {
	return &runtimeapi.PodSandbox{
		Id:             p.ID,
		Metadata:       p.Config.GetMetadata(),
		State:          p.State,
		CreatedAt:      p.CreatedAt.UnixNano(),
		Labels:         p.Config.GetLabels(),
		Annotations:    p.Config.GetAnnotations(),
		RuntimeHandler: p.RuntimeHandler,
	}
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
