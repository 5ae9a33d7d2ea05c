package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slipway-dev/slipway/runtime/timing"
)

// Credentials returns the username and secret to present to a registry
// host ("127.0.0.1:5000", "registry.k8s.io"). An empty username with a
// secret is an identity token; both empty means anonymous.
type Credentials func(host string) (username, secret string, err error)

// Pull fetches ref from its registry (through the hosts directory's mirrors),
// unpacks it for the snapshotter and records it under its reference and its
// repo@digest reference. creds may be nil for anonymous pulls.
//
// A pull holds its repository's lock (see Remove) and a containerd lease
// from its first fetch until its records exist and the index holds them, so
// a concurrent removal can neither collect what the pull fetched (content
// and snapshots) nor delete its records before it reads them back.
func (s *Service) Pull(ctx context.Context, ref string, creds Credentials) (Image, error) {
	named, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	name := named.String()
	start := time.Now()
	spans := timing.Start(ctx, "PullImage")
	defer spans.End()
	unlock, err := s.repos.Lock(ctx, repository(named))
	if err != nil {
		return Image{}, fmt.Errorf("pulling image %q: waiting for other work on its repository: %w", ref, err)
	}
	defer unlock()
	spans.Step("lock")
	ctx, release, err := s.lease(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("pulling image %q: %w", ref, err)
	}
	defer func() { release(); spans.Step("release-lease") }()
	spans.Step("lease")

	log.G(ctx).WithField("image", name).Debug("pulling image")
	var resolvedOnce sync.Once
	var resolved time.Time
	img, err := s.opts.Client.Pull(ctx, name,
		containerd.WithImageHandler(images.HandlerFunc(func(context.Context, ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			resolvedOnce.Do(func() { resolved = time.Now() })
			return nil, nil
		})),
		containerd.WithResolver(s.resolver(ctx, creds)),
		containerd.WithPlatformMatcher(platforms.Default()),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(s.opts.Snapshotter),
		containerd.WithMaxConcurrentDownloads(s.opts.MaxConcurrentDownloads),
	)
	if err != nil {
		return Image{}, fmt.Errorf("pulling image %q: %w", ref, classifyPullError(err))
	}
	resolvedOnce.Do(func() {})
	spans.StepAt("resolve", resolved)
	spans.Step("fetch-unpack")
	names := []string{name}
	if _, isDigested := named.(reference.Digested); !isDigested {
		digested, err := digestReference(named, img.Target().Digest)
		if err != nil {
			return Image{}, err
		}
		if err := s.putRecord(ctx, images.Image{Name: digested, Target: img.Target(), Labels: img.Labels()}); err != nil {
			return Image{}, err
		}
		names = append(names, digested)
	}
	spans.Step("records")
	for _, n := range names {
		if err := s.index.Refresh(ctx, n); err != nil {
			return Image{}, err
		}
	}
	spans.Step("index")
	pulled, err := s.index.Get(name)
	if err == nil {
		s.opts.Metrics.ObservePull(time.Since(start))
	}
	return pulled, err
}

// putRecord creates rec, or updates its target when the name exists.
func (s *Service) putRecord(ctx context.Context, rec images.Image) error {
	store := s.opts.Client.ImageService()
	if _, err := store.Create(ctx, rec); err == nil || !errdefs.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("creating image record %q: %w", rec.Name, err)
		}
		return nil
	}
	if _, err := store.Update(ctx, rec, "target"); err != nil {
		return fmt.Errorf("updating image record %q: %w", rec.Name, err)
	}
	return nil
}

// resolver resolves and fetches through the hosts directory.
func (s *Service) resolver(ctx context.Context, creds Credentials) remotes.Resolver {
	opts := config.HostOptions{Credentials: creds}
	if s.opts.HostsDir != "" {
		opts.HostDir = config.HostDirFromRoot(s.opts.HostsDir)
	}
	return countingResolver{
		Resolver: docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, opts)}),
		add:      s.opts.Metrics.AddPulledBytes,
	}
}

// classifyPullError gives registry auth failures an errdefs class, so the
// CRI reports them as Unauthenticated or PermissionDenied.
func classifyPullError(err error) error {
	if errors.Is(err, docker.ErrInvalidAuthorization) {
		return fmt.Errorf("%w: %w", errdefs.ErrUnauthenticated, err)
	}
	var status remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &status) {
		switch status.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %w", errdefs.ErrUnauthenticated, err)
		case http.StatusForbidden:
			return fmt.Errorf("%w: %w", errdefs.ErrPermissionDenied, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
		}
	}
	return err
}
