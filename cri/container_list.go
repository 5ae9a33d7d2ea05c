package cri

import (
	"context"
	"strings"

	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, filtered by ID (or ID prefix), state,
// pod sandbox ID and label selector.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	var out []*runtimeapi.Container
	// A node's containers share few images: each image's reference is
	// looked up once per call, not once per container.
	imageRefs := map[string]string{}
	for _, c := range s.opts.ContainerStore.List() {
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
			ImageRef:     s.cachedImageRef(imageRefs, c),
			ImageId:      c.ImageRef,
			State:        c.State,
			CreatedAt:    c.CreatedAt.UnixNano(),
			Labels:       c.Config.GetLabels(),
			Annotations:  c.Config.GetAnnotations(),
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// cachedImageRef is imageRef(c), remembered in refs by c's image ID.
func (s *Server) cachedImageRef(refs map[string]string, c container.Container) string {
	ref, ok := refs[c.ImageRef]
	if !ok {
		ref = s.imageRef(c)
		refs[c.ImageRef] = ref
	}
	return ref
}

func containerMatches(c container.Container, id, podID string, labels map[string]string) bool {
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
