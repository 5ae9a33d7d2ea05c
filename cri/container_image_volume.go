package cri

import (
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/imagevolume"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageVolumes resolves the images of config's image volumes (mounts with
// image set) in the node's image store and returns config with each such
// mount's image.image_ref set to its image's ID (what PullImage returned
// for it, which ContainerStatus reports), and the volumes for the runtime
// to mount. config itself is not changed. An image that is not on the
// node is errdefs.ErrNotFound naming the field: kubelet pulls it first.
func (s *Server) imageVolumes(config *runtimeapi.ContainerConfig) (*runtimeapi.ContainerConfig, []container.ImageVolume, error) {
	var out *runtimeapi.ContainerConfig
	var vols []container.ImageVolume
	for i, m := range config.GetMounts() {
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		field := fmt.Sprintf("config.mounts[%d]", i)
		img, err := s.opts.Images.Get(ref)
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("%s.image.image: image %q is not on the node; pull it first: %w", field, ref, errdefs.ErrNotFound)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s.image.image: %w", field, err)
		}
		if out == nil {
			out = proto.CloneOf(config)
		}
		out.Mounts[i].Image.ImageRef = img.ID
		vols = append(vols, container.ImageVolume{Mount: i, Volume: imagevolume.Volume{
			Field: field, Image: img.References[0], SubPath: m.GetImageSubPath(),
		}})
	}
	if out == nil {
		return config, nil, nil
	}
	return out, vols, nil
}
