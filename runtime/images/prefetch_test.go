package images

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gatedFetcher serves blobs, holding each fetch until gate is closed, and
// counts fetches per digest.
type gatedFetcher struct {
	blobs map[digest.Digest][]byte
	gate  chan struct{}
	fail  error
	mu    sync.Mutex
	count map[digest.Digest]int
}

func (f *gatedFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	f.mu.Lock()
	f.count[desc.Digest]++
	f.mu.Unlock()
	select {
	case <-f.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.fail != nil {
		return nil, f.fail
	}
	return io.NopCloser(bytes.NewReader(f.blobs[desc.Digest])), nil
}

func (f *gatedFetcher) fetches(d digest.Digest) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[d]
}

func blobDesc(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

// prefetchFixture is a manifest whose handler returns a config, two
// layers (one listed twice) and a foreign layer with URLs.
type prefetchFixture struct {
	manifest, config, layer1, layer2, foreign ocispec.Descriptor
	store                                     content.Store
	fetcher                                   *gatedFetcher
	prefetch                                  *layerPrefetch
	handler                                   images.Handler
}

func newPrefetchFixture(t *testing.T, fail error) *prefetchFixture {
	t.Helper()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l1, l2 := []byte("layer one"), []byte("layer two")
	f := &prefetchFixture{
		store:    store,
		manifest: blobDesc(ocispec.MediaTypeImageManifest, []byte("manifest")),
		config:   blobDesc(ocispec.MediaTypeImageConfig, []byte("config")),
		layer1:   blobDesc(ocispec.MediaTypeImageLayerGzip, l1),
		layer2:   blobDesc(images.MediaTypeDockerSchema2LayerGzip, l2),
		foreign:  blobDesc(images.MediaTypeDockerSchema2LayerForeignGzip, []byte("foreign")),
		fetcher: &gatedFetcher{
			blobs: map[digest.Digest][]byte{digest.FromBytes(l1): l1, digest.FromBytes(l2): l2},
			gate:  make(chan struct{}),
			fail:  fail,
			count: map[digest.Digest]int{},
		},
	}
	f.foreign.URLs = []string{"https://example.invalid/foreign"}
	f.prefetch = &layerPrefetch{
		store:   store,
		locks:   &blobLocks{},
		fetcher: func() (remotes.Fetcher, error) { return f.fetcher, nil },
	}
	children := []ocispec.Descriptor{f.config, f.layer1, f.layer2, f.layer1, f.foreign}
	inner := images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if desc.Digest == f.manifest.Digest {
			return children, nil
		}
		return nil, nil
	})
	f.handler = f.prefetch.wrap(context.Background())(inner)
	return f
}

// The prefetch of a manifest's layers holds each layer's blob key until
// the blob is in the store, so the unpacker's fetch (which takes the same
// key) waits and then finds it; each layer is fetched once, and neither
// the config nor a foreign layer is prefetched.
func TestLayerPrefetchHoldsTheBlobKeyUntilTheLayerIsStored(t *testing.T) {
	f := newPrefetchFixture(t, nil)
	ctx := context.Background()
	// The handler's context ends with the manifest's dispatch; the
	// prefetch must not.
	hctx, cancel := context.WithCancel(ctx)
	children, err := f.handler.Handle(hctx, f.manifest)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 5 {
		t.Fatalf("children changed: %v", children)
	}

	waitFor(t, func() bool { return f.fetcher.fetches(f.layer1.Digest) == 1 && f.fetcher.fetches(f.layer2.Digest) == 1 })
	locked := make(chan struct{})
	go func() {
		if err := f.prefetch.locks.Lock(ctx, blobKey(f.layer1.Digest)); err != nil {
			t.Error(err)
		}
		close(locked)
	}()
	select {
	case <-locked:
		t.Fatal("the unpacker got the layer's blob key while the prefetch was fetching it")
	case <-time.After(50 * time.Millisecond):
	}
	close(f.fetcher.gate)
	<-locked
	f.prefetch.locks.Unlock(blobKey(f.layer1.Digest))
	f.prefetch.Wait()

	for _, l := range []ocispec.Descriptor{f.layer1, f.layer2} {
		if _, err := f.store.Info(ctx, l.Digest); err != nil {
			t.Errorf("layer %s not in the store after its prefetch: %v", l.Digest, err)
		}
		if n := f.fetcher.fetches(l.Digest); n != 1 {
			t.Errorf("layer %s fetched %d times, want 1", l.Digest, n)
		}
	}
	for _, d := range []ocispec.Descriptor{f.config, f.foreign} {
		if n := f.fetcher.fetches(d.Digest); n != 0 {
			t.Errorf("%s %s prefetched %d times, want never", d.MediaType, d.Digest, n)
		}
	}
}

// A failed prefetch releases its key and leaves the layer to the
// unpacker's own fetch.
func TestLayerPrefetchFailureLeavesTheLayerToTheUnpacker(t *testing.T) {
	f := newPrefetchFixture(t, errors.New("registry went away"))
	close(f.fetcher.gate)
	if _, err := f.handler.Handle(context.Background(), f.manifest); err != nil {
		t.Fatal(err)
	}
	f.prefetch.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.prefetch.locks.Lock(ctx, blobKey(f.layer1.Digest)); err != nil {
		t.Fatalf("blob key still held after a failed prefetch: %v", err)
	}
	f.prefetch.locks.Unlock(blobKey(f.layer1.Digest))
	if _, err := f.store.Info(ctx, f.layer1.Digest); err == nil {
		t.Error("a failed prefetch stored the layer")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
