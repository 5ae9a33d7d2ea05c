package cri

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/images"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// countingImages counts Get calls on top of fakeImages.
type countingImages struct {
	*fakeImages
	gets int
}

func (c *countingImages) Get(ref string) (images.Image, error) {
	c.gets++
	return c.fakeImages.Get(ref)
}

// listServer is a Server over n containers in two images, and the image
// service it counts lookups on.
func listServer(n int) (*Server, *countingImages) {
	const idA, idB = "sha256:" + "aa", "sha256:" + "bb"
	imgs := &countingImages{fakeImages: &fakeImages{byRef: map[string]images.Image{
		idA: {ID: idA, References: []string{"registry.k8s.io/a:1"}, ManifestDigests: map[string]string{
			"registry.k8s.io/a:1": "sha256:" + fmt.Sprintf("%064d", 1),
		}},
		idB: {ID: idB},
	}}}
	store := container.NewStore(nil)
	now := time.Now()
	for i := range n {
		img := idA
		if i%2 == 1 {
			img = idB
		}
		store.Add(container.Container{
			ID: fmt.Sprintf("c%03d", i), PodID: "p", ImageRef: img, CreatedAt: now.Add(time.Duration(i)),
			State:  runtimeapi.ContainerState_CONTAINER_RUNNING,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: fmt.Sprint(i)}},
		})
	}
	return &Server{opts: Options{Images: imgs, ContainerStore: store}}, imgs
}

func TestListContainersImageRef(t *testing.T) {
	s, imgs := listServer(200)
	resp, err := s.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Containers) != 200 {
		t.Fatalf("listed %d containers, want 200", len(resp.Containers))
	}
	wantA := "registry.k8s.io/a@sha256:" + fmt.Sprintf("%064d", 1)
	for i, c := range resp.Containers {
		want := wantA
		if i%2 == 1 {
			want = "sha256:bb" // no repo digest: the image ID
		}
		if c.ImageRef != want {
			t.Fatalf("container %s image_ref = %q, want %q", c.Id, c.ImageRef, want)
		}
	}
	if imgs.gets != 2 {
		t.Errorf("looked images up %d times for 200 containers in 2 images, want 2", imgs.gets)
	}
}

func BenchmarkListContainers200(b *testing.B) {
	s, _ := listServer(200)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}
