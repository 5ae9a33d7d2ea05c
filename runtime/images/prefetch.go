package images

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slipway-dev/slipway/runtime/keylock"
)

// blobLocks is the duplication suppressor of slipway's pulls (containerd's
// unpacker takes a key per blob, "blob://DIGEST", while it fetches or
// handles the blob, and one per snapshot chain while it unpacks a layer),
// shared by all pulls so two pulls of one image fetch each blob once. It
// satisfies the unpacker's KeyedLocker (Lock(ctx, key) error, Unlock(key)).
// A key has one holder at a time, so unlock maps each held key to its
// release; mu guards unlock.
type blobLocks struct {
	locks  keylock.Locks
	mu     sync.Mutex
	unlock map[string]func()
}

// Lock waits for key (or ctx's end).
func (b *blobLocks) Lock(ctx context.Context, key string) error {
	release, err := b.locks.Lock(ctx, key)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unlock == nil {
		b.unlock = map[string]func(){}
	}
	b.unlock[key] = release
	return nil
}

// Unlock releases key, which the caller holds.
func (b *blobLocks) Unlock(key string) {
	b.mu.Lock()
	release := b.unlock[key]
	delete(b.unlock, key)
	b.mu.Unlock()
	if release == nil {
		panic(fmt.Sprintf("images: unlock of unlocked pull key %q", key))
	}
	release()
}

// blobKey is the unpacker's duplication-suppressor key of a blob
// (containerd v2.4 core/unpack makeBlobDescriptorKey). Were it to change,
// a prefetch would no longer hold the unpacker's fetch back, and both
// would ingest the blob: containerd's ingest lock keeps that correct, at
// the cost of a second open writer.
func blobKey(d digest.Digest) string { return "blob://" + d.String() }

// layerPrefetch starts downloading a manifest's layers as soon as the
// manifest is read. containerd's unpacker withholds the layers until it
// has the image config (it needs the config's diff IDs to name the
// snapshots), so without this the config's whole fetch, commit and label
// round trips come before the first layer byte. Each prefetch holds its
// layer's blob key in the pull's blobLocks while it downloads, so the
// unpacker's own fetch of that layer waits for it and then finds the blob
// in the content store. A prefetch that fails is only logged: the
// unpacker fetches the layer itself and reports the error.
//
// Prefetches run on the pull's context (which carries its lease, so what
// they ingest is leased as the rest of the pull); Wait must return before
// the lease is released.
type layerPrefetch struct {
	store content.Ingester
	locks *blobLocks
	// fetcher returns the pull's fetcher (made once, on first use).
	fetcher func() (remotes.Fetcher, error)

	wg      sync.WaitGroup
	mu      sync.Mutex
	started map[digest.Digest]bool // mu guards started
}

// wrap returns a handler wrapper for containerd.WithImageHandlerWrapper
// that starts the prefetch of the layers of every manifest h handles.
// Prefetches run on pullCtx, not on the handler's context, which ends
// when the manifest's dispatch does.
func (p *layerPrefetch) wrap(pullCtx context.Context) func(images.Handler) images.Handler {
	return func(h images.Handler) images.Handler {
		return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			children, err := h.Handle(ctx, desc)
			if err != nil || !images.IsManifestType(desc.MediaType) {
				return children, err
			}
			for _, child := range children {
				// Layers with URLs (foreign layers) are left to the
				// unpacker, as is anything that is not a plain layer.
				if images.IsLayerType(child.MediaType) && len(child.URLs) == 0 {
					p.start(pullCtx, child)
				}
			}
			return children, nil
		})
	}
}

// start fetches layer in the background unless it was started already.
func (p *layerPrefetch) start(ctx context.Context, layer ocispec.Descriptor) {
	p.mu.Lock()
	if p.started == nil {
		p.started = map[digest.Digest]bool{}
	}
	if p.started[layer.Digest] {
		p.mu.Unlock()
		return
	}
	p.started[layer.Digest] = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.fetch(ctx, layer); err != nil && ctx.Err() == nil {
			log.G(ctx).WithError(err).WithField("layer", layer.Digest).Debug("layer prefetch failed; the unpacker fetches it")
		}
	}()
}

func (p *layerPrefetch) fetch(ctx context.Context, layer ocispec.Descriptor) error {
	key := blobKey(layer.Digest)
	if err := p.locks.Lock(ctx, key); err != nil {
		return err
	}
	defer p.locks.Unlock(key)
	fetcher, err := p.fetcher()
	if err != nil {
		return err
	}
	err = remotes.Fetch(ctx, p.store, fetcher, layer)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil
	}
	return err
}

// Wait waits for the prefetches started so far.
func (p *layerPrefetch) Wait() { p.wg.Wait() }
