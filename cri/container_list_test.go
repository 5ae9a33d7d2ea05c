package cri

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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

// TestListContainersImageRef: a list reports the image ID as image_ref
// and image_id, as containerd's does, without an image-store lookup.
func TestListContainersImageRef(t *testing.T) {
	s, imgs := listServer(200)
	resp, err := s.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Containers) != 200 {
		t.Fatalf("listed %d containers, want 200", len(resp.Containers))
	}
	for i, c := range resp.Containers {
		want := "sha256:aa"
		if i%2 == 1 {
			want = "sha256:bb"
		}
		if c.ImageRef != want || c.ImageId != want {
			t.Fatalf("container %s image_ref = %q, image_id = %q, want %q for both", c.Id, c.ImageRef, c.ImageId, want)
		}
	}
	if imgs.gets != 0 {
		t.Errorf("looked images up %d times to list containers, want none", imgs.gets)
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

// TestListContainersMessagesFollowRecords: an unchanged record is listed
// with the message built for it the first time; a changed record (a new
// state) gets a new message, and the old one is left as it was (an
// earlier response may still be marshalling it).
func TestListContainersMessagesFollowRecords(t *testing.T) {
	s, _ := listServer(3)
	ctx := context.Background()
	list := func() map[string]*runtimeapi.Container {
		t.Helper()
		resp, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*runtimeapi.Container{}
		for _, c := range resp.Containers {
			got[c.Id] = c
		}
		return got
	}
	first := list()
	second := list()
	for id, c := range first {
		if second[id] != c {
			t.Errorf("container %s: a second list built a new message for an unchanged record", id)
		}
	}
	exited, err := s.opts.ContainerStore.Get("c001")
	if err != nil {
		t.Fatal(err)
	}
	exited.State = runtimeapi.ContainerState_CONTAINER_EXITED
	s.opts.ContainerStore.Add(exited)
	third := list()
	if third["c001"].State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("after the exit, c001 is listed %s", third["c001"].State)
	}
	if first["c001"].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the earlier response's message changed to %s", first["c001"].State)
	}
	if third["c000"] != first["c000"] {
		t.Error("c000 did not change but got a new message")
	}
}

// TestListContainersMessagesPruned: messages of records no longer indexed
// are dropped, so churn (containers created and removed for days) does not
// grow the memory the list keeps.
func TestListContainersMessagesPruned(t *testing.T) {
	s, _ := listServer(10)
	store := s.opts.ContainerStore
	ctx := context.Background()
	for i := range 1000 {
		id := fmt.Sprintf("churn%d", i)
		store.Add(container.Container{ID: id, PodID: "p", ImageRef: "sha256:aa", CreatedAt: time.Now(),
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: id}}})
		if _, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil {
			t.Fatal(err)
		}
		store.Drop(id)
	}
	s.listed.mu.Lock()
	kept := len(s.listed.byRecord)
	s.listed.mu.Unlock()
	if kept > 2*11+64 {
		t.Errorf("keeps %d messages for 10 indexed containers after 1000 removed", kept)
	}
}

// TestListContainersConcurrentMarshal marshals the shared messages of
// concurrent lists while records change (run with -race), as the gRPC
// server does with concurrent calls.
func TestListContainersConcurrentMarshal(t *testing.T) {
	s, _ := listServer(20)
	store := s.opts.ContainerStore
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				if w == 0 && i%10 == 0 {
					store.Add(container.Container{ID: fmt.Sprintf("c%03d", i%20), PodID: "p", ImageRef: "sha256:bb", CreatedAt: time.Now(),
						State:  runtimeapi.ContainerState(i % 4),
						Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "changed"}}})
				}
				resp, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
				if err != nil {
					t.Error(err)
					return
				}
				b, err := proto.Marshal(resp)
				if err != nil {
					t.Error(err)
					return
				}
				var back runtimeapi.ListContainersResponse
				if err := proto.Unmarshal(b, &back); err != nil || len(back.Containers) != 20 {
					t.Errorf("unmarshalled %d containers (%v), want 20", len(back.Containers), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
