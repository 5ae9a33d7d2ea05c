package container

// Against a real containerd 2.4.2, runc and the runc v2 shim, as root:
// Remove answers once the removal is recorded, the rest finishes in the
// background, and a removal a crash interrupted is finished by the next
// runtime's Reconcile, never listed again.

import (
	"context"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRemoveFinishesInTheBackgroundAndAfterACrash(t *testing.T) {
	client, rootfs := startContainerd(t)
	ctx := namespaces.WithNamespace(context.Background(), testNamespace)
	newRuntime := func() (*Runtime, *Store) {
		store := NewStore(client.ContainerService())
		if _, err := store.Load(ctx); err != nil {
			t.Fatal(err)
		}
		rt := New(Options{
			Client: client, Store: store, Snapshotter: "overlayfs",
			LogIO: func(Container, AttachPaths) (cio.Creator, error) { return cio.NullIO, nil },
		})
		t.Cleanup(rt.Close)
		return rt, store
	}
	rt, store := newRuntime()
	started := func(name string) string {
		id := "remove-" + name
		c := Container{ID: id, Name: id, PodID: "pod", Config: &runtimeapi.ContainerConfig{}, State: runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: time.Now()}
		ext, err := Extension(c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.NewContainer(ctx, id,
			containerd.WithRuntime(RuntimeName, nil),
			containerd.WithNewSpec(oci.WithRootFSPath(rootfs), oci.WithProcessArgs("/bin/sleep", "3600"), oci.WithCgroup("/"+id)),
			containerd.WithContainerLabels(Labels(c.PodID)),
			withExtension(ext),
		)
		if err != nil {
			t.Fatal(err)
		}
		store.Add(c)
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	gone := func(id string) {
		t.Helper()
		if _, err := client.ContainerService().Get(ctx, id); !errdefs.IsNotFound(err) {
			t.Errorf("containerd container %s: %v, want NotFound", id, err)
		}
		if _, err := client.SandboxStore().Get(ctx, id); !errdefs.IsNotFound(err) {
			t.Errorf("exit guard of %s: %v, want NotFound", id, err)
		}
	}

	// A stopped container whose task the monitor is deleting.
	first := started("first")
	if err := rt.Stop(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(first); !errdefs.IsNotFound(err) {
		t.Fatalf("index after Remove: %v, want NotFound", err)
	}
	if err := rt.Remove(ctx, first); err != nil {
		t.Fatalf("second Remove: %v, want success", err)
	}
	if err := rt.awaitRemovals(ctx, "pod"); err != nil {
		t.Fatal(err)
	}
	gone(first)

	// A crash right after the mark: the task still runs, nothing else
	// was deleted, and the runtime is gone.
	second := started("second")
	rt.Close()
	if err := store.MarkRemoving(ctx, second); err != nil {
		t.Fatal(err)
	}
	next, reloaded := newRuntime()
	if _, err := reloaded.Get(second); !errdefs.IsNotFound(err) {
		t.Fatalf("a container marked removing was loaded: %v", err)
	}
	if err := next.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	gone(second)
	if left, err := reloaded.Removing(ctx); err != nil || len(left) != 0 {
		t.Errorf("containers still marked removing: %v, %v", left, err)
	}
}
