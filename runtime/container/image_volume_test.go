package container

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/slipway-dev/slipway/runtime/imagevolume"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeImageVolumes mounts volume i of a container at "/iv/ID/i"; err, when
// set, fails Mount.
type fakeImageVolumes struct {
	err     error
	mounted map[string][]imagevolume.Volume
}

func (f *fakeImageVolumes) Mount(_ context.Context, id string, vols []imagevolume.Volume) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.mounted[id] = vols
	paths := make([]string, len(vols))
	for i := range vols {
		paths[i] = "/iv/" + id + "/" + strconv.Itoa(i)
	}
	return paths, nil
}

func (f *fakeImageVolumes) Remove(_ context.Context, id string) error {
	delete(f.mounted, id)
	return nil
}

func (f *fakeImageVolumes) Cleanup(context.Context, func(string) bool) error { return nil }

func TestMountImageVolumes(t *testing.T) {
	config := &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{
		{ContainerPath: "/host", HostPath: "/srv"},
		{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "sha256:1", ImageRef: "sha256:1"}, ImageSubPath: "etc"},
	}}
	before := proto.CloneOf(config)
	vols := []ImageVolume{{Mount: 1, Volume: imagevolume.Volume{Field: "config.mounts[1]", Image: "data:1", SubPath: "etc"}}}
	fake := &fakeImageVolumes{mounted: map[string][]imagevolume.Volume{}}
	r := &Runtime{opts: Options{ImageVolumes: fake}}

	got, err := r.mountImageVolumes(context.Background(), "c1", config, vols)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(config, before) {
		t.Errorf("the input config changed: %v", config)
	}
	if got.Mounts[1].HostPath != "/iv/c1/0" || got.Mounts[0].HostPath != "/srv" {
		t.Errorf("host paths = %q, %q; want /srv, /iv/c1/0", got.Mounts[0].HostPath, got.Mounts[1].HostPath)
	}
	if m := fake.mounted["c1"]; len(m) != 1 || m[0] != vols[0].Volume {
		t.Errorf("mounted %+v, want %+v", m, vols[0].Volume)
	}

	if got, err := r.mountImageVolumes(context.Background(), "c2", config, nil); err != nil || got != config {
		t.Errorf("no volumes: %v, %v; want the config itself", got, err)
	}

	fake.err = errors.New("boom")
	if _, err := r.mountImageVolumes(context.Background(), "c3", config, vols); !errors.Is(err, fake.err) {
		t.Errorf("failing mount: %v, want %v", err, fake.err)
	}

	bad := []ImageVolume{{Mount: 0, Volume: imagevolume.Volume{Field: "config.mounts[0]"}}}
	fake.err = nil
	if _, err := r.mountImageVolumes(context.Background(), "c4", config, bad); !errdefs.IsInvalidArgument(err) {
		t.Errorf("volume on a mount without an image: %v, want an invalid argument", err)
	}

	off := &Runtime{}
	if _, err := off.mountImageVolumes(context.Background(), "c5", config, vols); !errdefs.IsNotImplemented(err) {
		t.Errorf("without ImageVolumes: %v, want not implemented", err)
	}
	if err := off.removeImageVolumes(context.Background(), "c5"); err != nil {
		t.Errorf("removing without ImageVolumes: %v", err)
	}
}
