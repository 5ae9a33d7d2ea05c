// Package images keeps slipway's image store: pulls into containerd, an
// in-memory index of images by ID and reference rebuilt from containerd, and
// the snapshotter's disk usage. It knows nothing of the CRI or gRPC.
package images

import (
	"sort"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PinnedLabel marks an image record that must not be garbage collected by
// kubelet. containerd's CRI uses the same label, so images pinned by either
// runtime stay pinned.
const PinnedLabel = "io.cri-containerd.pinned"

// PinnedValue is the value PinnedLabel carries on a pinned image record.
const PinnedValue = "pinned"

// Image is one image as the node sees it: a config digest and every
// containerd image record (reference) that resolves to it.
type Image struct {
	// ID is the digest of the image config for the node's platform.
	ID string
	// References are the containerd image record names, sorted.
	References []string
	// Size is the size of the manifest, config and layers as stored.
	Size int64
	// Config is the image config (the parsed config blob).
	Config ocispec.Image
	// Pinned is true when any reference carries PinnedLabel.
	Pinned bool
	// ManifestDigests maps each reference to the digest its record targets.
	ManifestDigests map[string]string
}

// RepoTags are the tagged references of the image, sorted.
func (i Image) RepoTags() []string {
	var tags []string
	for _, r := range i.References {
		named, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.Tagged); ok {
			tags = append(tags, r)
		}
	}
	return tags
}

// RepoDigests are repo@digest references of the image, sorted: the digest
// records themselves and, for every tag, its repository with the digest the
// tag's record targets.
func (i Image) RepoDigests() []string {
	seen := map[string]bool{}
	for _, r := range i.References {
		named, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.Digested); ok {
			seen[r] = true
			continue
		}
		if d, ok := i.ManifestDigests[r]; ok {
			if canonical, err := reference.WithDigest(reference.TrimNamed(named), digestOf(d)); err == nil {
				seen[canonical.String()] = true
			}
		}
	}
	digests := make([]string, 0, len(seen))
	for d := range seen {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	return digests
}
