package cri

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/imagevolume"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestImageVolumes(t *testing.T) {
	data := images.Image{ID: "sha256:d47a", References: []string{"registry.k8s.io/data:1"}}
	s := NewServer(Options{Images: &fakeImages{byRef: map[string]images.Image{"sha256:d47a": data, "data:1": data}}})
	config := &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{
		{ContainerPath: "/host", HostPath: "/srv"},
		{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "sha256:d47a"}, ImageSubPath: "etc"},
		{ContainerPath: "/data", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "data:1", UserSpecifiedImage: "data:1"}},
	}}
	before := proto.CloneOf(config)

	got, vols, err := s.imageVolumes(config)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(config, before) {
		t.Errorf("imageVolumes changed its input: %v", config)
	}
	for _, i := range []int{1, 2} {
		if ref := got.Mounts[i].GetImage().GetImageRef(); ref != data.ID {
			t.Errorf("mounts[%d].image.image_ref = %q, want the image ID %q", i, ref, data.ID)
		}
	}
	want := []container.ImageVolume{
		{Mount: 1, Volume: imagevolume.Volume{Field: "config.mounts[1]", Image: "registry.k8s.io/data:1", SubPath: "etc"}},
		{Mount: 2, Volume: imagevolume.Volume{Field: "config.mounts[2]", Image: "registry.k8s.io/data:1"}},
	}
	if len(vols) != len(want) {
		t.Fatalf("volumes = %+v, want %+v", vols, want)
	}
	for i := range want {
		if vols[i] != want[i] {
			t.Errorf("volumes[%d] = %+v, want %+v", i, vols[i], want[i])
		}
	}

	plain := &runtimeapi.ContainerConfig{Mounts: before.Mounts[:1]}
	if got, vols, err := s.imageVolumes(plain); err != nil || got != plain || vols != nil {
		t.Errorf("without image volumes: %v, %v, %v; want the config itself", got, vols, err)
	}

	missing := &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "gone:1"}}}}
	if _, _, err := s.imageVolumes(missing); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "config.mounts[0].image.image") {
		t.Errorf("missing image: %v; want NotFound naming config.mounts[0].image.image", err)
	}
}
