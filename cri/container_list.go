package cri

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, oldest first, filtered by ID (or ID
// prefix), state, pod sandbox ID and label selector. It reads the indexed
// records in place (containerView) and answers with each record's message
// encoded once (listEncodings): the response carries the containers as
// its unknown fields, so on the wire it is the same message, but in
// process its Containers field is empty; decode it (proto.Marshal,
// proto.Unmarshal) to read it in process.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	var keep func(*container.Container) bool
	if f.GetId() != "" || f.GetPodSandboxId() != "" || len(f.GetLabelSelector()) > 0 || f.GetState() != nil {
		keep = func(c *container.Container) bool {
			if !containerMatches(c, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
				return false
			}
			return f.GetState() == nil || f.GetState().State == c.State
		}
	}
	entries, err := s.listedContainers.entries(s.containerView(), keep, containersField, listedContainer)
	if err != nil {
		return nil, err
	}
	return encodedResponse(&runtimeapi.ListContainersResponse{}, entries), nil
}

// containersField is ListContainersResponse's containers.
var containersField = (&runtimeapi.ListContainersResponse{}).ProtoReflect().Descriptor().Fields().ByName("containers")

// containerView is every indexed container record, oldest first, shared
// with the index (index.Index.View): read them, never change them.
func (s *Server) containerView() []*container.Container {
	return s.opts.ContainerStore.View(func(c *container.Container) int64 { return c.CreatedAt.UnixNano() })
}

// listedContainer is the CRI message of container record c. It depends
// on the record alone (listEncodings keeps it for as long as the record is
// indexed). image_ref is the image ID, as in containerd's lists: kubelet
// reads image_id (and image_ref only when image_id is empty, from
// runtimes older than v1.30); ContainerStatus reports the repo digest,
// which needs an image-store lookup that a list of hundreds skips.
func listedContainer(c *container.Container) proto.Message {
	return &runtimeapi.Container{
		Id:           c.ID,
		PodSandboxId: c.PodID,
		Metadata:     c.Config.GetMetadata(),
		Image:        &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Config.GetImage().GetUserSpecifiedImage()},
		ImageRef:     c.ImageRef,
		ImageId:      c.ImageRef,
		State:        c.State,
		CreatedAt:    c.CreatedAt.UnixNano(),
		Labels:       c.Config.GetLabels(),
		Annotations:  c.Config.GetAnnotations(),
	}
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
