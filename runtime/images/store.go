package images

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/slipway-dev/slipway/runtime/keylock"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
)

// Index is the in-memory view of the images in one containerd namespace,
// rebuilt from containerd by Sync and kept current by Refresh. Reads never
// call containerd.
//
// Refreshes of one name run one at a time, and a Sync runs alone, so what
// the index holds for a name is what containerd held when the last Refresh
// (or Sync) of it read containerd: a Refresh that read before a deletion
// cannot apply after the Refresh that read after it.
type Index struct {
	records  images.Store
	content  content.Provider
	platform platforms.MatchComparer

	// syncMu is held exclusively by Sync and shared by Refresh.
	syncMu sync.RWMutex
	// names serializes Refresh per record name.
	names keylock.Locks
	// resolving shares one content read among the Refreshes of records
	// of one target that miss the index at once (a pull's tag and its
	// repo@digest), keyed by target digest.
	resolving singleflight.Group

	mu sync.RWMutex
	// byID maps image ID to its entry; mu guards it.
	byID map[string]*entry
	// byRef maps a reference to the image ID it resolves to; mu guards it.
	byRef map[string]string
}

// entry is the indexed state of one image ID.
type entry struct {
	size   int64
	config ocispec.Image
	// refs maps each reference to its record's target digest and pinned state.
	refs map[string]refInfo
}

type refInfo struct {
	target string
	pinned bool
}

// NewIndex returns an empty index over a namespace's image records and
// content. Call Sync before serving reads.
func NewIndex(records images.Store, provider content.Provider, platform platforms.MatchComparer) *Index {
	return &Index{
		records:  records,
		content:  provider,
		platform: platform,
		byID:     map[string]*entry{},
		byRef:    map[string]string{},
	}
}

// Sync rebuilds the index from every image record in containerd. Records
// whose content is missing for the node's platform are skipped and logged.
func (x *Index) Sync(ctx context.Context) error {
	x.syncMu.Lock()
	defer x.syncMu.Unlock()
	list, err := x.records.List(ctx)
	if err != nil {
		return fmt.Errorf("listing images: %w", err)
	}
	byID := map[string]*entry{}
	byRef := map[string]string{}
	// byTarget saves reading the content of a target again for its other
	// records (a tag and its repo@digest share one).
	byTarget := map[string]string{}
	for _, rec := range list {
		id, ok := byTarget[rec.Target.Digest.String()]
		e := byID[id]
		if !ok {
			var err error
			if id, e, err = x.resolve(ctx, rec); err != nil {
				log.G(ctx).WithError(err).WithField("image", rec.Name).Debug("skipping image record")
				continue
			}
			byTarget[rec.Target.Digest.String()] = id
		}
		if old, ok := byID[id]; ok {
			e = old
		} else {
			byID[id] = e
		}
		e.refs[rec.Name] = refInfo{target: rec.Target.Digest.String(), pinned: isPinned(rec)}
		byRef[rec.Name] = id
	}
	x.mu.Lock()
	x.byID, x.byRef = byID, byRef
	x.mu.Unlock()
	return nil
}

// Refresh re-reads the record called name from containerd and moves it to
// the image it now resolves to, or drops it when the record is gone.
func (x *Index) Refresh(ctx context.Context, name string) error {
	x.syncMu.RLock()
	defer x.syncMu.RUnlock()
	unlock, err := x.names.Lock(ctx, name)
	if err != nil {
		return fmt.Errorf("refreshing image %q: %w", name, err)
	}
	defer unlock()
	rec, err := x.records.Get(ctx, name)
	if errdefs.IsNotFound(err) {
		x.mu.Lock()
		x.dropRefLocked(name)
		x.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting image %q: %w", name, err)
	}
	id, e, ok := x.indexedTarget(rec.Target.Digest.String())
	if !ok {
		if id, e, err = x.resolveShared(ctx, rec); err != nil {
			return err
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dropRefLocked(name)
	if old, ok := x.byID[id]; ok {
		e = old
	} else {
		x.byID[id] = e
	}
	e.refs[name] = refInfo{target: rec.Target.Digest.String(), pinned: isPinned(rec)}
	x.byRef[name] = id
	return nil
}

// indexedTarget returns the image ID of an indexed record whose target is
// digest target, with a new entry of that image's config and size: they
// follow from the target alone (content is immutable), so a record that
// shares its target with another (a tag and its repo@digest, a retag)
// needs no content read.
func (x *Index) indexedTarget(target string) (string, *entry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, e := range x.byID {
		for _, info := range e.refs {
			if info.target == target {
				return id, &entry{size: e.size, config: e.config, refs: map[string]refInfo{}}, true
			}
		}
	}
	return "", nil, false
}

// dropRefLocked removes name from the index; x.mu must be held.
func (x *Index) dropRefLocked(name string) {
	id, ok := x.byRef[name]
	if !ok {
		return
	}
	delete(x.byRef, name)
	if e, ok := x.byID[id]; ok {
		delete(e.refs, name)
		if len(e.refs) == 0 {
			delete(x.byID, id)
		}
	}
}

// Get returns the image that ref names: an image ID ("sha256:..." or bare
// hex), or a reference in any form ParseReference accepts. A missing image
// is an errdefs.ErrNotFound; a malformed ref an errdefs.ErrInvalidArgument.
func (x *Index) Get(ref string) (Image, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if d, ok := parseImageID(ref); ok {
		if _, found := x.byID[d.String()]; found {
			return x.imageLocked(d.String()), nil
		}
		if !strings.Contains(ref, "@") {
			return Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
		}
	}
	named, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	id, ok := x.byRef[named.String()]
	if !ok {
		return Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	return x.imageLocked(id), nil
}

// List returns every indexed image, sorted by ID.
func (x *Index) List() []Image {
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := make([]Image, 0, len(x.byID))
	for id := range x.byID {
		list = append(list, x.imageLocked(id))
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list
}

// imageLocked builds the Image for id; x.mu must be held.
func (x *Index) imageLocked(id string) Image {
	e := x.byID[id]
	img := Image{ID: id, Size: e.size, Config: e.config, ManifestDigests: map[string]string{}}
	for name, info := range e.refs {
		img.References = append(img.References, name)
		img.ManifestDigests[name] = info.target
		img.Pinned = img.Pinned || info.pinned
	}
	sort.Strings(img.References)
	return img
}

// resolveShared is resolve, done once for the records of one target that
// ask at the same time; each gets an entry of its own.
func (x *Index) resolveShared(ctx context.Context, rec images.Image) (string, *entry, error) {
	type resolved struct {
		id string
		e  *entry
	}
	v, err, _ := x.resolving.Do(rec.Target.Digest.String(), func() (any, error) {
		id, e, err := x.resolve(ctx, rec)
		return resolved{id, e}, err
	})
	if err != nil {
		return "", nil, err
	}
	r := v.(resolved)
	return r.id, &entry{size: r.e.size, config: r.e.config, refs: map[string]refInfo{}}, nil
}

// resolve reads a record's config and size from the content store, each
// blob once (the config and the size walk both read the index and the
// manifest).
func (x *Index) resolve(ctx context.Context, rec images.Image) (string, *entry, error) {
	provider := &blobCache{Provider: x.content, blobs: map[digest.Digest][]byte{}}
	configDesc, err := rec.Config(ctx, provider, x.platform)
	if err != nil {
		return "", nil, fmt.Errorf("image %q config: %w", rec.Name, err)
	}
	blob, err := content.ReadBlob(ctx, provider, configDesc)
	if err != nil {
		return "", nil, fmt.Errorf("image %q config blob: %w", rec.Name, err)
	}
	var config ocispec.Image
	if err := json.Unmarshal(blob, &config); err != nil {
		return "", nil, fmt.Errorf("image %q config is not valid JSON: %w", rec.Name, err)
	}
	size, err := rec.Size(ctx, provider, x.platform)
	if err != nil {
		return "", nil, fmt.Errorf("image %q size: %w", rec.Name, err)
	}
	return configDesc.Digest.String(), &entry{size: size, config: config, refs: map[string]refInfo{}}, nil
}

// blobCache is a provider that reads each blob once from Provider and
// serves it from memory after; for the small blobs (index, manifest,
// config) of one resolve, by one goroutine.
type blobCache struct {
	content.Provider
	blobs map[digest.Digest][]byte
}

func (c *blobCache) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	b, ok := c.blobs[desc.Digest]
	if !ok {
		var err error
		if b, err = content.ReadBlob(ctx, c.Provider, desc); err != nil {
			return nil, err
		}
		c.blobs[desc.Digest] = b
	}
	return bytesReaderAt{bytes.NewReader(b)}, nil
}

// bytesReaderAt is a content.ReaderAt over a blob in memory.
type bytesReaderAt struct{ *bytes.Reader }

func (bytesReaderAt) Close() error { return nil }

func isPinned(rec images.Image) bool {
	return rec.Labels[PinnedLabel] == PinnedValue
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
