package cri

import (
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/runtime/images"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// toCRIImage translates an image of the store to the CRI's Image.
func toCRIImage(img images.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags(),
		RepoDigests: img.RepoDigests(),
		Size:        uint64(img.Size),
		Pinned:      img.Pinned,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
	}
	uid, username := imageUser(img.Config.Config.User)
	if uid != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *uid}
	}
	out.Username = username
	return out
}

// imageUser splits an image's USER ("1002", "www-data", "1003:1004",
// "www-data:group") into a numeric uid or a username; the group is ignored,
// as kubelet only wants to know whether the image runs as root.
func imageUser(user string) (*int64, string) {
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(name, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, name
}
