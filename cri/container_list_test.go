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
// listContainers calls ListContainers and decodes its answer, as a client
// does: the response carries the containers encoded (ListContainers).
func listContainers(t testing.TB, s *Server, req *runtimeapi.ListContainersRequest) []*runtimeapi.Container {
	t.Helper()
	resp, err := s.ListContainers(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back runtimeapi.ListContainersResponse
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back.Containers
}

func TestListContainersImageRef(t *testing.T) {
	s, imgs := listServer(200)
	listed := listContainers(t, s, &runtimeapi.ListContainersRequest{})
	if len(listed) != 200 {
		t.Fatalf("listed %d containers, want 200", len(listed))
	}
	for i, c := range listed {
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
	list := func(state *runtimeapi.ContainerStateValue) map[string]runtimeapi.ContainerState {
		t.Helper()
		got := map[string]runtimeapi.ContainerState{}
		for _, c := range listContainers(t, s, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{State: state}}) {
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
		for _, c := range listContainers(t, s, &runtimeapi.ListContainersRequest{}) {
			if c.Metadata.GetName() == "" || c.ImageRef == "" {
				t.Fatalf("incomplete container in the list: %v", c)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// TestListContainersFollowRecords: an unchanged node is answered with the
// same bytes; a changed record (a new state) is listed changed at once,
// and an earlier answer keeps what it said (it may still be marshalling).
func TestListContainersFollowRecords(t *testing.T) {
	s, _ := listServer(3)
	ctx := context.Background()
	wire := func() []byte {
		t.Helper()
		resp, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.ProtoReflect().GetUnknown()
	}
	decode := func(b []byte) map[string]runtimeapi.ContainerState {
		t.Helper()
		var resp runtimeapi.ListContainersResponse
		if err := proto.Unmarshal(b, &resp); err != nil {
			t.Fatal(err)
		}
		got := map[string]runtimeapi.ContainerState{}
		for _, c := range resp.Containers {
			got[c.Id] = c.State
		}
		return got
	}
	first := wire()
	if second := wire(); &second[0] != &first[0] {
		t.Error("a second list of an unchanged node encoded its answer again")
	}
	exited, err := s.opts.ContainerStore.Get("c001")
	if err != nil {
		t.Fatal(err)
	}
	exited.State = runtimeapi.ContainerState_CONTAINER_EXITED
	s.opts.ContainerStore.Add(exited)
	if got := decode(wire())["c001"]; got != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("after the exit, c001 is listed %s", got)
	}
	if got := decode(first)["c001"]; got != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the earlier answer changed to %s", got)
	}
	filtered := listContainers(t, s, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: "c00", PodSandboxId: "p",
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}}})
	if len(filtered) != 1 || filtered[0].Id != "c001" || filtered[0].Metadata.GetName() != "1" {
		t.Errorf("exited containers: %v, want c001 alone", filtered)
	}
}

// TestListContainersEncodingsPruned: encodings of records no longer indexed
// are dropped, so churn (containers created and removed for days) does not
// grow the memory the list keeps.
func TestListContainersEncodingsPruned(t *testing.T) {
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
	s.listedContainers.mu.Lock()
	kept := len(s.listedContainers.byRecord)
	s.listedContainers.mu.Unlock()
	if kept > 2*11+64 {
		t.Errorf("keeps %d encodings for 10 indexed containers after 1000 removed", kept)
	}
}

// TestListContainersConcurrentMarshal marshals the shared encodings of
// concurrent lists while records change (run with -race), as the gRPC
// server does with concurrent calls: every answer decodes whole.
func TestListContainersConcurrentMarshal(t *testing.T) {
	s, _ := listServer(20)
	store := s.opts.ContainerStore
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				if w == 0 && i%10 == 0 {
					store.Add(container.Container{ID: fmt.Sprintf("c%03d", i%20), PodID: "p", ImageRef: "sha256:bb", CreatedAt: time.Now(),
						State:  runtimeapi.ContainerState(i % 4),
						Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "changed"}}})
				}
				resp, err := s.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{})
				if err != nil {
					t.Error(err)
					return
				}
				b, err := proto.Marshal(resp)
				if err != nil {
					t.Error(err)
					return
				}
				var listed runtimeapi.ListContainersResponse
				if err := proto.Unmarshal(b, &listed); err != nil || len(listed.Containers) != 20 {
					t.Errorf("decoded %d containers (%v), want 20", len(listed.Containers), err)
					return
				}
				for _, c := range listed.Containers {
					if c.Metadata.GetName() == "" || c.ImageId == "" {
						t.Errorf("incomplete container in the list: %v", c)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
