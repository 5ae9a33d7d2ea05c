package cri

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/images"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageStatus returns the image named by ID, tag or digest, or an empty
// response when the node has no such image (the CRI's "not present").
// A verbose call adds the image config as JSON under "info".
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image is required: %w", errdefs.ErrInvalidArgument)
	}
	img, err := s.opts.Images.Get(ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image.image: %w", err)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if req.GetVerbose() {
		info, err := verboseImageInfo(img)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// verboseImageInfo is the JSON crictl inspecti shows under "info".
func verboseImageInfo(img images.Image) (string, error) {
	b, err := json.Marshal(struct {
		ID         string      `json:"id"`
		References []string    `json:"references"`
		Pinned     bool        `json:"pinned"`
		ImageSpec  interface{} `json:"imageSpec"`
	}{img.ID, img.References, img.Pinned, img.Config})
	if err != nil {
		return "", fmt.Errorf("encoding image info: %w", err)
	}
	return string(b), nil
}
