package images

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ParseReference normalizes a user-given image reference ("busybox",
// "registry.k8s.io/pause:3.9", "repo@sha256:...") to its fully qualified
// form, adding the "latest" tag when neither tag nor digest is given.
// An empty or malformed reference is an errdefs.ErrInvalidArgument.
func ParseReference(ref string) (reference.Named, error) {
	if ref == "" {
		return nil, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q is malformed: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return named, nil
}

// parseImageID returns the digest when ref is an image ID: "sha256:<hex>" or
// a bare 64-character hex string.
func parseImageID(ref string) (digest.Digest, bool) {
	if !strings.Contains(ref, ":") && len(ref) == 64 {
		ref = "sha256:" + ref
	}
	d, err := digest.Parse(ref)
	if err != nil {
		return "", false
	}
	return d, true
}

// digestReference is repo@dgst for the repository of named.
func digestReference(named reference.Named, dgst digest.Digest) (string, error) {
	canonical, err := reference.WithDigest(reference.TrimNamed(named), dgst)
	if err != nil {
		return "", err
	}
	return canonical.String(), nil
}

// repository is the repository of named without tag or digest
// ("docker.io/library/busybox").
func repository(named reference.Named) string { return named.Name() }

// repositories are the repositories of refs, sorted and without repeats;
// references that do not parse are left out.
func repositories(refs []string) []string {
	var repos []string
	for _, r := range refs {
		if named, err := reference.ParseNormalizedNamed(r); err == nil {
			repos = append(repos, repository(named))
		}
	}
	slices.Sort(repos)
	return slices.Compact(repos)
}

// subset reports whether every element of a is in sorted b.
func subset(a, b []string) bool {
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			return false
		}
	}
	return true
}
