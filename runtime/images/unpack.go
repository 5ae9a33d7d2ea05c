package images

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/image-spec/identity"
)

// UnpackedChainID unpacks img for snapshotter unless it is unpacked
// already, and returns the chain ID of its layers: the name of the
// committed snapshot that a container's rootfs or an image volume's view
// is made on.
func UnpackedChainID(ctx context.Context, img containerd.Image, snapshotter string) (string, error) {
	unpacked, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return "", fmt.Errorf("checking image unpack: %w", err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return "", fmt.Errorf("unpacking image: %w", err)
		}
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return "", fmt.Errorf("reading image layers: %w", err)
	}
	return identity.ChainID(diffIDs).String(), nil
}
