package images

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeRecords is an in-memory images.Store.
type fakeRecords struct {
	mu      sync.Mutex
	records map[string]images.Image
	listErr error
}

var _ images.Store = (*fakeRecords)(nil)

func (f *fakeRecords) Get(_ context.Context, name string) (images.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.records[name]
	if !ok {
		return images.Image{}, errdefs.ErrNotFound
	}
	return r, nil
}

func (f *fakeRecords) List(context.Context, ...string) ([]images.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []images.Image
	for _, r := range f.records {
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeRecords) Create(_ context.Context, r images.Image) (images.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[r.Name] = r
	return r, nil
}

func (f *fakeRecords) Update(ctx context.Context, r images.Image, _ ...string) (images.Image, error) {
	return f.Create(ctx, r)
}

func (f *fakeRecords) Delete(_ context.Context, name string, _ ...images.DeleteOpt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.records, name)
	return nil
}

// testImage writes a config and a one-layer manifest to store and returns
// the manifest descriptor and the config digest.
func testImage(t *testing.T, store content.Store, user string) (ocispec.Descriptor, string) {
	t.Helper()
	ctx := context.Background()
	write := func(mediaType string, v any) ocispec.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := content.WriteBlob(ctx, store, desc.Digest.String(), bytesReader(b), desc); err != nil {
			t.Fatal(err)
		}
		return desc
	}
	config := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: platforms.DefaultSpec().Architecture},
		Config:   ocispec.ImageConfig{User: user},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(user)}},
	}
	configDesc := write(ocispec.MediaTypeImageConfig, config)
	layer := write(ocispec.MediaTypeImageLayer, map[string]string{"layer": user})
	manifest := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: configDesc, Layers: []ocispec.Descriptor{layer}}
	manifest.SchemaVersion = 2
	return write(ocispec.MediaTypeImageManifest, manifest), configDesc.Digest.String()
}

func newTestIndex(t *testing.T) (*Index, *fakeRecords, content.Store) {
	t.Helper()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	records := &fakeRecords{records: map[string]images.Image{}}
	return NewIndex(records, store, platforms.Default()), records, store
}

func TestIndexGroupsReferencesByConfig(t *testing.T) {
	ctx := context.Background()
	x, records, store := newTestIndex(t)
	manifest, id := testImage(t, store, "1002")
	other, otherID := testImage(t, store, "www-data")
	for _, name := range []string{
		"docker.io/library/busybox:latest",
		"docker.io/library/busybox:1.0",
		"docker.io/library/busybox@" + manifest.Digest.String(),
	} {
		records.Create(ctx, images.Image{Name: name, Target: manifest})
	}
	records.Create(ctx, images.Image{Name: "gcr.io/x/other:1", Target: other, Labels: map[string]string{PinnedLabel: PinnedValue}})
	records.Create(ctx, images.Image{Name: "docker.io/library/broken:1", Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("missing"), Size: 7}})
	if err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	if got := len(x.List()); got != 2 {
		t.Fatalf("List has %d images, want 2 (the broken record is skipped)", got)
	}
	for _, ref := range []string{"busybox", "busybox:1.0", "docker.io/library/busybox:latest", id, id[len("sha256:"):], "busybox@" + manifest.Digest.String()} {
		img, err := x.Get(ref)
		if err != nil {
			t.Fatalf("Get(%q): %v", ref, err)
		}
		if img.ID != id {
			t.Errorf("Get(%q).ID = %s, want %s", ref, img.ID, id)
		}
	}
	img, _ := x.Get("busybox")
	if want := []string{"docker.io/library/busybox:1.0", "docker.io/library/busybox:latest"}; !equal(img.RepoTags(), want) {
		t.Errorf("RepoTags = %v, want %v", img.RepoTags(), want)
	}
	if want := []string{"docker.io/library/busybox@" + manifest.Digest.String()}; !equal(img.RepoDigests(), want) {
		t.Errorf("RepoDigests = %v, want %v", img.RepoDigests(), want)
	}
	if img.Pinned {
		t.Error("busybox is pinned, want not pinned")
	}
	if img.Size <= manifest.Size {
		t.Errorf("Size = %d, want manifest plus config plus layer", img.Size)
	}
	o, err := x.Get(otherID)
	if err != nil || !o.Pinned || o.Config.Config.User != "www-data" {
		t.Errorf("Get(other) = %+v, %v; want pinned www-data image", o, err)
	}
}

func TestIndexGetErrors(t *testing.T) {
	x, _, _ := newTestIndex(t)
	for ref, want := range map[string]error{
		"busybox":                 errdefs.ErrNotFound,
		"sha256:" + hex64:         errdefs.ErrNotFound,
		hex64:                     errdefs.ErrNotFound,
		"":                        errdefs.ErrInvalidArgument,
		"upper/Case":              errdefs.ErrInvalidArgument,
		"repo@sha256:abc":         errdefs.ErrInvalidArgument,
		"busybox:bad tag!":        errdefs.ErrInvalidArgument,
		"busybox@" + hex64:        errdefs.ErrInvalidArgument,
		"busybox@sha256:" + hex64: errdefs.ErrNotFound,
	} {
		if _, err := x.Get(ref); !errors.Is(err, want) {
			t.Errorf("Get(%q) = %v, want %v", ref, err, want)
		}
	}
}

func TestIndexRefreshMovesAndDropsReferences(t *testing.T) {
	ctx := context.Background()
	x, records, store := newTestIndex(t)
	a, idA := testImage(t, store, "a")
	b, idB := testImage(t, store, "b")
	records.Create(ctx, images.Image{Name: "docker.io/library/app:1", Target: a})
	if err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Retag app:1 to image b, as a rebuild does.
	records.Update(ctx, images.Image{Name: "docker.io/library/app:1", Target: b})
	if err := x.Refresh(ctx, "docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	if img, err := x.Get("app:1"); err != nil || img.ID != idB {
		t.Fatalf("after retag Get(app:1) = %v, %v; want %s", img.ID, err, idB)
	}
	if _, err := x.Get(idA); !errdefs.IsNotFound(err) {
		t.Errorf("image a still indexed with no references: %v", err)
	}
	records.Delete(ctx, "docker.io/library/app:1")
	if err := x.Refresh(ctx, "docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	if n := len(x.List()); n != 0 {
		t.Errorf("List has %d images after delete, want 0", n)
	}
}

func TestIndexSyncKeepsOldIndexOnError(t *testing.T) {
	ctx := context.Background()
	x, records, store := newTestIndex(t)
	a, _ := testImage(t, store, "a")
	records.Create(ctx, images.Image{Name: "docker.io/library/app:1", Target: a})
	if err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	records.listErr = errdefs.ErrUnavailable
	if err := x.Sync(ctx); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Sync = %v, want unavailable", err)
	}
	if n := len(x.List()); n != 1 {
		t.Errorf("List has %d images after a failed sync, want the 1 from before", n)
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
