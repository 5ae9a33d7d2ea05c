package cri

import (
	"context"
	"strings"

	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, oldest first, filtered by ID (or ID
// prefix), state, pod sandbox ID and label selector. It reads the indexed
// records in place (containerView) and builds a message only for the
// containers that pass the filter.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	all := s.containerView()
	out := make([]*runtimeapi.Container, 0, len(all))
	// A node's containers share few images: each image's reference is
	// looked up once per call, not once per container.
	var refs imageRefMemo
	for _, c := range all {
		if !containerMatches(c, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
			continue
		}
		if f.GetState() != nil && f.GetState().State != c.State {
			continue
		}
		out = append(out, &runtimeapi.Container{
			Id:           c.ID,
			PodSandboxId: c.PodID,
			Metadata:     c.Config.GetMetadata(),
			Image:        &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Config.GetImage().GetUserSpecifiedImage()},
			ImageRef:     refs.get(s, c.ImageRef),
			ImageId:      c.ImageRef,
			State:        c.State,
			CreatedAt:    c.CreatedAt.UnixNano(),
			Labels:       c.Config.GetLabels(),
			Annotations:  c.Config.GetAnnotations(),
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// containerView is every indexed container record, oldest first, shared
// with the index (index.Index.View): read them, never change them.
func (s *Server) containerView() []*container.Container {
	return s.opts.ContainerStore.View(func(c *container.Container) int64 { return c.CreatedAt.UnixNano() })
}

// imageRefMemo remembers imageRef by image ID for one call.
type imageRefMemo map[string]string

// get is s.imageRef(imageID), looked up once per image ID.
func (m *imageRefMemo) get(s *Server, imageID string) string {
	ref, ok := (*m)[imageID]
	if !ok {
		if *m == nil {
			*m = imageRefMemo{}
		}
		ref = s.imageRef(imageID)
		(*m)[imageID] = ref
	}
	return ref
}

func containerMatches(c *container.Container, id, podID string, labels map[string]string) bool {
	if id != "" && !strings.HasPrefix(c.ID, id) {
		return false
	}
	if podID != "" && !strings.HasPrefix(c.PodID, podID) {
		return false
	}
	have := c.Config.GetLabels()
	for k, v := range labels {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
