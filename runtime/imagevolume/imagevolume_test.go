package imagevolume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fakeSnapshots keeps views in memory; a view's mounts are a read-only
// bind mount of src.
type fakeSnapshots struct {
	snapshots.Snapshotter // nil: calls not faked panic
	src                   string
	mu                    sync.Mutex
	views                 map[string]snapshots.Info
}

func (f *fakeSnapshots) View(_ context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.views[key]; ok {
		return nil, errdefs.ErrAlreadyExists
	}
	info := snapshots.Info{Name: key, Parent: parent, Kind: snapshots.KindView}
	for _, o := range opts {
		if err := o(&info); err != nil {
			return nil, err
		}
	}
	f.views[key] = info
	return f.mountsOf(), nil
}

func (f *fakeSnapshots) mountsOf() []mount.Mount {
	return []mount.Mount{{Type: "bind", Source: f.src, Options: []string{"rbind", "ro"}}}
}

func (f *fakeSnapshots) Mounts(_ context.Context, key string) ([]mount.Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.views[key]; !ok {
		return nil, errdefs.ErrNotFound
	}
	return f.mountsOf(), nil
}

func (f *fakeSnapshots) Walk(ctx context.Context, fn snapshots.WalkFunc, fs ...string) error {
	filter, err := filters.ParseAll(fs...)
	if err != nil {
		return err
	}
	f.mu.Lock()
	var infos []snapshots.Info
	for _, info := range f.views {
		if filter.Match(labelsAdaptor(info.Name, info.Labels)) {
			infos = append(infos, info)
		}
	}
	f.mu.Unlock()
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSnapshots) Remove(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.views[key]; !ok {
		return errdefs.ErrNotFound
	}
	delete(f.views, key)
	return nil
}

func labelsAdaptor(id string, labels map[string]string) filters.Adaptor {
	return filters.AdapterFunc(func(path []string) (string, bool) {
		switch {
		case len(path) == 1 && path[0] == "id":
			return id, true
		case len(path) == 2 && path[0] == "labels":
			v, ok := labels[path[1]]
			return v, ok
		}
		return "", false
	})
}

// fakeLeases keeps leases in memory.
type fakeLeases struct {
	leases.Manager // nil: calls not faked panic
	mu             sync.Mutex
	leases         map[string]leases.Lease
}

func (f *fakeLeases) Create(_ context.Context, opts ...leases.Opt) (leases.Lease, error) {
	var l leases.Lease
	for _, o := range opts {
		if err := o(&l); err != nil {
			return leases.Lease{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[l.ID]; ok {
		return leases.Lease{}, errdefs.ErrAlreadyExists
	}
	f.leases[l.ID] = l
	return l, nil
}

func (f *fakeLeases) List(_ context.Context, fs ...string) ([]leases.Lease, error) {
	filter, err := filters.ParseAll(fs...)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []leases.Lease
	for _, l := range f.leases {
		if filter.Match(labelsAdaptor(l.ID, l.Labels)) {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeLeases) Delete(_ context.Context, l leases.Lease, _ ...leases.DeleteOpt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[l.ID]; !ok {
		return errdefs.ErrNotFound
	}
	delete(f.leases, l.ID)
	return nil
}

// testManager is a Manager over fakes whose one image, "data:1", has the
// files of a temporary directory: etc/passwd and greeting.
func testManager(t *testing.T) (*Manager, *fakeSnapshots, *fakeLeases) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: image volumes are real mounts")
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"etc/passwd": "root:x:0:0::/:/bin/sh\n", "greeting": "hello\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sn := &fakeSnapshots{src: src, views: map[string]snapshots.Info{}}
	ls := &fakeLeases{leases: map[string]leases.Lease{}}
	m := &Manager{
		dir: filepath.Join(t.TempDir(), "image-volumes"), leases: ls, snapshots: sn,
		chainID: func(_ context.Context, image string) (string, error) {
			if image != "data:1" {
				return "", errdefs.ErrNotFound
			}
			return "sha256:chain", nil
		},
	}
	t.Cleanup(func() {
		if err := m.Remove(context.Background(), "c1"); err != nil {
			t.Error(err)
		}
	})
	return m, sn, ls
}

func TestMountAndRemove(t *testing.T) {
	m, sn, ls := testManager(t)
	ctx := context.Background()
	paths, err := m.Mount(ctx, "c1", []Volume{
		{Field: "config.mounts[0]", Image: "data:1"},
		{Field: "config.mounts[3]", Image: "data:1", SubPath: "etc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(paths[0], "greeting")); err != nil || string(b) != "hello\n" {
		t.Errorf("greeting in the image root: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(paths[1], "passwd")); err != nil {
		t.Errorf("the sub path is not etc: %v", err)
	}
	if err := os.WriteFile(filepath.Join(paths[0], "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing to the volume: %v, want EROFS", err)
	}
	if len(sn.views) != 2 || len(ls.leases) != 1 {
		t.Fatalf("views %v, leases %v; want two views and one lease", sn.views, ls.leases)
	}
	for i := range 2 {
		v := sn.views[ViewKey("c1", i)]
		if v.Parent != "sha256:chain" || v.Labels[ContainerLabel] != "c1" || v.Labels[TargetLabel] != filepath.Join(m.dir, "c1", strconv.Itoa(i)) {
			t.Errorf("view %d: %+v", i, v)
		}
	}

	for range 2 { // removing twice succeeds
		if err := m.Remove(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	assertNothingLeft(t, m, sn, ls)
}

func TestMountFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		vols  []Volume
		kind  error
		field string
	}{
		{
			name:  "sub path missing from the image",
			vols:  []Volume{{Field: "config.mounts[0]", Image: "data:1"}, {Field: "config.mounts[1]", Image: "data:1", SubPath: "no/such"}},
			kind:  errdefs.ErrInvalidArgument,
			field: "config.mounts[1].image_sub_path",
		},
		{
			name:  "sub path that is a file",
			vols:  []Volume{{Field: "config.mounts[0]", Image: "data:1", SubPath: "greeting"}},
			kind:  errdefs.ErrInvalidArgument,
			field: "config.mounts[0].image_sub_path",
		},
		{
			name:  "image not on the node",
			vols:  []Volume{{Field: "config.mounts[0]", Image: "data:1"}, {Field: "config.mounts[1]", Image: "gone:1"}},
			kind:  errdefs.ErrNotFound,
			field: "config.mounts[1].image",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, sn, ls := testManager(t)
			_, err := m.Mount(ctx, "c1", tc.vols)
			if !errors.Is(err, tc.kind) || !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Errorf("Mount = %v; want %v naming %s", err, tc.kind, tc.field)
			}
			assertNothingLeft(t, m, sn, ls)
		})
	}
}

func TestCleanup(t *testing.T) {
	m, sn, ls := testManager(t)
	ctx := context.Background()
	vol := []Volume{{Field: "config.mounts[0]", Image: "data:1"}}
	live, err := m.Mount(ctx, "c1", vol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount(ctx, "gone", vol); err != nil {
		t.Fatal(err)
	}
	// A directory without a view or lease, as a crash may leave.
	if err := os.MkdirAll(filepath.Join(m.dir, "stray", "0"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A reboot unmounts c1's view.
	if err := mount.UnmountAll(live[0], 0); err != nil {
		t.Fatal(err)
	}

	if err := m.Cleanup(ctx, func(id string) bool { return id == "c1" }); err != nil {
		t.Fatal(err)
	}
	if mounted, err := mountinfo.Mounted(live[0]); err != nil || !mounted {
		t.Errorf("c1's view is not mounted again: %v, %v", mounted, err)
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"c1"}) {
		t.Errorf("left in the image volume dir: %v, want only c1", names)
	}
	if _, ok := sn.views[ViewKey("gone", 0)]; ok {
		t.Error("the view of a gone container is left")
	}
	if _, ok := ls.leases[LeaseID("gone")]; ok {
		t.Error("the lease of a gone container is left")
	}
	if _, ok := ls.leases[LeaseID("c1")]; !ok {
		t.Error("the lease of a live container is gone")
	}
}

func assertNothingLeft(t *testing.T, m *Manager, sn *fakeSnapshots, ls *fakeLeases) {
	t.Helper()
	if len(sn.views) != 0 || len(ls.leases) != 0 {
		t.Errorf("left: views %v, leases %v", sn.views, ls.leases)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container's mount dir is left: %v", err)
	}
}
