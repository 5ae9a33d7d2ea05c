package cri

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus reports a container's state, times, exit, image, mounts,
// resources, user and log path; verbose adds its record as JSON under
// "info".
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.opts.ContainerStore.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(c)}
	if req.GetVerbose() {
		info, err := json.Marshal(struct {
			container.Container
			Pid uint32 `json:"pid"`
		}{c, c.Pid})
		if err != nil {
			return nil, fmt.Errorf("encoding container info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (s *Server) containerStatus(c container.Container) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    c.Config.GetMetadata(),
		State:       c.State,
		CreatedAt:   c.CreatedAt.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Config.GetImage().GetUserSpecifiedImage()},
		ImageRef:    s.imageRef(c.ImageRef),
		ImageId:     c.ImageRef,
		ExitCode:    c.ExitCode,
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      c.Config.GetLabels(),
		Annotations: c.Config.GetAnnotations(),
		Mounts:      c.Config.GetMounts(),
		LogPath:     c.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: c.Resources},
		User:        containerUser(c.User),
	}
	if !c.StartedAt.IsZero() {
		st.StartedAt = c.StartedAt.UnixNano()
	}
	if !c.FinishedAt.IsZero() {
		st.FinishedAt = c.FinishedAt.UnixNano()
	}
	return st
}

// imageRef is the repo digest of the image with ID imageID when it has
// one, else the ID, as containerd reports it.
func (s *Server) imageRef(imageID string) string {
	img, err := s.opts.Images.Get(imageID)
	if err == nil {
		if digests := img.RepoDigests(); len(digests) > 0 {
			return digests[0]
		}
	}
	return imageID
}

// containerUser reports the identity the container's process runs as:
// its uid, primary gid and supplementary groups after the image's groups
// were merged in (SupplementalGroupsPolicy Merge) or not (Strict).
func containerUser(u container.ProcessUser) *runtimeapi.ContainerUser {
	groups := make([]int64, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, int64(g))
	}
	return &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}
