package cri

import (
	"context"
	"fmt"
	"sync"
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

// TestListContainersShowsEveryChange: a container created, started,
// exited and removed shows in that state in the very next list, and the
// state filter follows it.
func TestListContainersShowsEveryChange(t *testing.T) {
	s, _ := listServer(3)
	store := s.opts.ContainerStore
	ctx := context.Background()
	list := func(state *runtimeapi.ContainerStateValue) map[string]runtimeapi.ContainerState {
		t.Helper()
		resp, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{State: state}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]runtimeapi.ContainerState{}
		for _, c := range resp.Containers {
			got[c.Id] = c.State
		}
		return got
	}
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	c := container.Container{ID: "new", PodID: "p", ImageRef: "sha256:bb", CreatedAt: time.Now(),
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "new"}}}
	for _, state := range []runtimeapi.ContainerState{
		runtimeapi.ContainerState_CONTAINER_CREATED, runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED,
	} {
		c.State = state
		store.Add(c)
		if got := list(nil); got["new"] != state || len(got) != 4 {
			t.Fatalf("after the container became %s, the list has %v", state, got)
		}
		_, inRunning := list(running)["new"]
		if want := state == runtimeapi.ContainerState_CONTAINER_RUNNING; inRunning != want {
			t.Errorf("container %s: in the running list = %v", state, inRunning)
		}
	}
	store.Drop("new")
	if got := list(nil); len(got) != 3 {
		t.Errorf("after removal the list has %v", got)
	}
}

// TestListContainersDuringChanges lists while containers are added,
// changed and dropped (run with -race): every listed container is whole.
func TestListContainersDuringChanges(t *testing.T) {
	s, _ := listServer(50)
	store := s.opts.ContainerStore
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("x%d", i%5)
			store.Add(container.Container{ID: id, PodID: "p", ImageRef: "sha256:aa", CreatedAt: time.Now(),
				State:  runtimeapi.ContainerState(i % 4),
				Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: id}}})
			if i%3 == 0 {
				store.Drop(id)
			}
		}
	})
	for range 200 {
		resp, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Containers {
			if c.Metadata.GetName() == "" || c.ImageRef == "" {
				t.Fatalf("incomplete container in the list: %v", c)
			}
		}
	}
	close(stop)
	wg.Wait()
}
