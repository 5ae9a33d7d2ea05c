package container

// Against a real containerd, as root: Create records a container while its
// rootfs snapshot is prepared, so a crash between the two writes can leave
// a created container without a snapshot. CleanupInterrupted deletes
// exactly those.

import (
	"context"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCleanupDeletesCreatedContainersWithoutRootfs(t *testing.T) {
	client, _ := startContainerd(t)
	ctx := namespaces.WithNamespace(context.Background(), testNamespace)
	const snapshotter = "overlayfs"
	record := func(id string, state runtimeapi.ContainerState) Container {
		c := Container{ID: id, Name: "name-" + id, PodID: "pod", Config: &runtimeapi.ContainerConfig{}, State: state, CreatedAt: time.Now()}
		ext, err := Extension(c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.NewContainer(ctx, id,
			containerd.WithRuntime(RuntimeName, nil),
			withRootfsSnapshot(snapshotter, id),
			containerd.WithNewSpec(oci.WithProcessArgs("true")),
			containerd.WithContainerLabels(Labels(c.PodID)),
			withExtension(ext),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = client.ContainerService().Delete(ctx, id)
			_ = client.SnapshotService(snapshotter).Remove(ctx, id)
		})
		return c
	}
	prepare := func(id string) {
		if _, err := client.SnapshotService(snapshotter).Prepare(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	interrupted := record("interrupted", runtimeapi.ContainerState_CONTAINER_CREATED)
	created := record("created", runtimeapi.ContainerState_CONTAINER_CREATED)
	prepare(created.ID)
	// An exited container whose snapshot is gone is not an interrupted
	// creation: it stays for Remove.
	exited := record("exited", runtimeapi.ContainerState_CONTAINER_EXITED)

	store := NewStore(client.ContainerService())
	if _, err := store.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rt := New(Options{Client: client, Store: store, Snapshotter: snapshotter})
	t.Cleanup(rt.Close)
	if err := rt.CleanupInterrupted(ctx); err != nil {
		t.Fatalf("CleanupInterrupted: %v", err)
	}

	if _, err := client.ContainerService().Get(ctx, interrupted.ID); !errdefs.IsNotFound(err) {
		t.Errorf("container without rootfs: Get = %v, want NotFound", err)
	}
	if _, err := store.Get(interrupted.ID); !errdefs.IsNotFound(err) {
		t.Errorf("container without rootfs still indexed (%v)", err)
	}
	for _, c := range []Container{created, exited} {
		if _, err := client.ContainerService().Get(ctx, c.ID); err != nil {
			t.Errorf("%s: %v, want it kept", c.ID, err)
		}
		if _, err := store.Get(c.ID); err != nil {
			t.Errorf("%s no longer indexed: %v", c.ID, err)
		}
	}
	// Its name is free again.
	if _, existing, err := rt.names.Reserve(ctx, interrupted.Name, "new-id"); err != nil || existing != "" {
		t.Errorf("reserving the interrupted container's name: existing %q, %v", existing, err)
	}
}
