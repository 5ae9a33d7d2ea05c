package container

// Against a real containerd 2.4.2, runc and the runc v2 shim, as root: the
// record writes of a started container fail (containerd's container store
// refuses them), and the container must still be followed, stoppable and
// recorded once the store works again.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/slipway-dev/slipway/runtime/embedded"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testNamespace = "slipway-container-test"

// failingStore is containerd's container store with Update failing while
// fail is set.
type failingStore struct {
	containers.Store
	fail atomic.Bool
}

var errStoreDown = errors.New("container store is down")

func (s *failingStore) Update(ctx context.Context, c containers.Container, fieldpaths ...string) (containers.Container, error) {
	if s.fail.Load() {
		return containers.Container{}, errStoreDown
	}
	return s.Store.Update(ctx, c, fieldpaths...)
}

func TestStartWhoseRecordFailsIsFollowedAndRecordedLater(t *testing.T) {
	client, rootfs := startContainerd(t)
	ctx := namespaces.WithNamespace(context.Background(), testNamespace)
	store := &failingStore{Store: client.ContainerService()}
	idx := NewStore(store)
	rt := New(Options{
		Client: client, Store: idx, Snapshotter: "overlayfs",
		LogIO: func(Container, AttachPaths) (cio.Creator, error) { return cio.NullIO, nil },
	})
	t.Cleanup(rt.Close)

	run := func(name, script string) string {
		id := "start-record-" + name
		c := Container{ID: id, Name: id, PodID: "pod", Config: &runtimeapi.ContainerConfig{}, State: runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: time.Now()}
		ext, err := Extension(c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.NewContainer(ctx, id,
			containerd.WithRuntime(RuntimeName, nil),
			containerd.WithNewSpec(oci.WithRootFSPath(rootfs), oci.WithProcessArgs("/bin/sh", "-c", script), oci.WithCgroup("/"+id)),
			containerd.WithContainerLabels(Labels(c.PodID)),
			withExtension(ext),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cleanup := namespaces.WithNamespace(context.Background(), testNamespace)
			store.fail.Store(false)
			if err := rt.Remove(cleanup, id); err != nil {
				t.Errorf("Remove %s: %v", id, err)
			}
			if err := rt.awaitRemovals(cleanup, c.PodID); err != nil {
				t.Errorf("finishing the removal of %s: %v", id, err)
			}
		})
		idx.Add(c)
		return id
	}
	sleeper := run("sleeper", "sleep 3600")
	ender := run("ender", "sleep 1; exit 3")

	store.fail.Store(true)
	for _, id := range []string{sleeper, ender} {
		if err := rt.Start(ctx, id); !errors.Is(err, errStoreDown) {
			t.Fatalf("Start(%s) with the store down = %v, want its error", id, err)
		}
		if c, _ := idx.Get(id); c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			t.Fatalf("%s is %s in the index, want CREATED (what containerd has)", id, c.State)
		}
	}
	// The sleeper is followed: Stop ends it once its exit can be recorded.
	stopped := make(chan error, 1)
	go func() { stopped <- rt.Stop(ctx, sleeper, 0) }()
	time.Sleep(2 * time.Second) // the ender exits meanwhile
	store.fail.Store(false)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return once the store worked again")
	}
	if err := rt.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	for id, want := range map[string]int32{sleeper: 137, ender: 3} {
		c, err := idx.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != runtimeapi.ContainerState_CONTAINER_EXITED || c.ExitCode != want {
			t.Errorf("%s: %s with code %d, want EXITED with %d", id, c.State, c.ExitCode, want)
		}
		if c.StartedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) {
			t.Errorf("%s: started %v, finished %v", id, c.StartedAt, c.FinishedAt)
		}
	}
	// What is persisted agrees with the index.
	reloaded := NewStore(client.ContainerService())
	if _, err := reloaded.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sleeper, ender} {
		c, err := reloaded.Get(id)
		if err != nil || c.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("persisted %s: %s, %v; want EXITED", id, c.State, err)
		}
	}
}

// startContainerd runs a containerd of the test's own and returns a client
// in testNamespace and a busybox rootfs; it skips without root or tools.
func startContainerd(t *testing.T) (*containerd.Client, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found", bin)
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := embedded.Start(ctx, embedded.Config{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	client, err := containerd.New(d.Address(), containerd.WithDefaultNamespace(testNamespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })

	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := exec.LookPath("busybox")
	out, err := exec.Command("cp", src, filepath.Join(rootfs, "bin", "busybox")).CombinedOutput()
	if err != nil {
		t.Fatalf("copying busybox: %v %s", err, out)
	}
	for _, applet := range []string{"sh", "sleep"} {
		if err := os.Link(filepath.Join(rootfs, "bin", "busybox"), filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return client, rootfs
}
