package container

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/imagevolume"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageVolumes mounts and removes containers' image volumes
// (imagevolume.Manager).
type ImageVolumes interface {
	Mount(ctx context.Context, id string, vols []imagevolume.Volume) ([]string, error)
	Remove(ctx context.Context, id string) error
	Cleanup(ctx context.Context, live func(id string) bool) error
}

var _ ImageVolumes = (*imagevolume.Manager)(nil)

// ImageVolume is one image volume of a container to create.
type ImageVolume struct {
	// Mount is the index in the container config's mounts of the mount
	// whose host path the volume fills in.
	Mount int
	imagevolume.Volume
}

// mountImageVolumes mounts container id's image volumes and returns
// config with their host paths filled in; config itself is not changed.
// On error nothing is left mounted.
func (r *Runtime) mountImageVolumes(ctx context.Context, id string, config *runtimeapi.ContainerConfig, vols []ImageVolume) (*runtimeapi.ContainerConfig, error) {
	if len(vols) == 0 {
		return config, nil
	}
	if r.opts.ImageVolumes == nil {
		return nil, fmt.Errorf("%s: image volumes are not enabled: %w", vols[0].Field, errdefs.ErrNotImplemented)
	}
	out := proto.CloneOf(config)
	req := make([]imagevolume.Volume, len(vols))
	for i, v := range vols {
		if v.Mount < 0 || v.Mount >= len(out.Mounts) || out.Mounts[v.Mount].GetImage() == nil {
			return nil, fmt.Errorf("%s: no image mount at index %d: %w", v.Field, v.Mount, errdefs.ErrInvalidArgument)
		}
		req[i] = v.Volume
	}
	paths, err := r.opts.ImageVolumes.Mount(ctx, id, req)
	if err != nil {
		return nil, err
	}
	for i, v := range vols {
		out.Mounts[v.Mount].HostPath = paths[i]
	}
	return out, nil
}

// removeImageVolumes removes container id's image volumes, if any.
func (r *Runtime) removeImageVolumes(ctx context.Context, id string) error {
	if r.opts.ImageVolumes == nil {
		return nil
	}
	return r.opts.ImageVolumes.Remove(ctx, id)
}

// cleanupImageVolumes removes the image volumes of containers that are
// gone and remounts those of the others (imagevolume.Manager.Cleanup).
// Those of a container being removed stay for its removal, which deletes
// them after its task.
func (r *Runtime) cleanupImageVolumes(ctx context.Context) error {
	if r.opts.ImageVolumes == nil {
		return nil
	}
	removing, err := r.opts.Store.Removing(ctx)
	if err != nil {
		return err
	}
	return r.opts.ImageVolumes.Cleanup(ctx, func(id string) bool {
		if _, ok := removing[id]; ok {
			return true
		}
		c, err := r.opts.Store.Get(id) // Get also takes prefixes
		return err == nil && c.ID == id
	})
}
