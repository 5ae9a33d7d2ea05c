package images

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countingProvider counts the blobs read through it, in all and by digest.
type countingProvider struct {
	content.Provider
	reads atomic.Int32
	mu    sync.Mutex
	by    map[digest.Digest]int // mu guards by
}

func (p *countingProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	p.reads.Add(1)
	p.mu.Lock()
	if p.by == nil {
		p.by = map[digest.Digest]int{}
	}
	p.by[desc.Digest]++
	p.mu.Unlock()
	return p.Provider.ReaderAt(ctx, desc)
}

// A record that shares its target with an indexed one (a pull's tag and
// repo@digest) is indexed without reading content; a new target is read.
func TestIndexRefreshReusesIndexedTarget(t *testing.T) {
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	records := &fakeRecords{records: map[string]images.Image{}}
	provider := &countingProvider{Provider: store}
	x := NewIndex(records, provider, platforms.Default())
	a, idA := testImage(t, store, "a")
	b, idB := testImage(t, store, "b")

	records.Create(ctx, images.Image{Name: "docker.io/library/app:1", Target: a})
	if err := x.Refresh(ctx, "docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	if provider.reads.Load() == 0 {
		t.Fatal("the first record of a target was indexed without reading its content")
	}
	for d, n := range provider.by {
		if n != 1 {
			t.Errorf("indexing a new target read blob %s %d times, want once", d, n)
		}
	}
	first, err := x.Get("app:1")
	if err != nil || first.ID != idA {
		t.Fatalf("Get(app:1) = %v, %v; want %s", first.ID, err, idA)
	}

	provider.reads.Store(0)
	digested := "docker.io/library/app@" + a.Digest.String()
	records.Create(ctx, images.Image{Name: digested, Target: a})
	if err := x.Refresh(ctx, digested); err != nil {
		t.Fatal(err)
	}
	if n := provider.reads.Load(); n != 0 {
		t.Errorf("a second record of an indexed target read %d blobs, want 0", n)
	}
	img, err := x.Get(digested)
	if err != nil || img.ID != idA || img.Size != first.Size || img.Config.Config.User != "a" {
		t.Errorf("Get(digested) = %+v, %v; want image %s of size %d with user a", img, err, idA, first.Size)
	}
	if len(img.References) != 2 {
		t.Errorf("References = %v, want the tag and the digest", img.References)
	}

	// Retagging to a target no record has reads it.
	records.Update(ctx, images.Image{Name: "docker.io/library/app:1", Target: b})
	if err := x.Refresh(ctx, "docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	if provider.reads.Load() == 0 {
		t.Error("a new target was indexed without reading its content")
	}
	if img, err := x.Get("app:1"); err != nil || img.ID != idB || img.Config.Config.User != "b" {
		t.Errorf("after retag Get(app:1) = %+v, %v; want %s", img, err, idB)
	}
}
