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
	"golang.org/x/sync/errgroup"
)

// Credentials returns the username and secret to present to a registry
// host ("127.0.0.1:5000", "registry.k8s.io"). An empty username with a
// secret is an identity token; both empty means anonymous.
type Credentials func(host string) (username, secret string, err error)

// Pull fetches ref from its registry (through the hosts directory's mirrors),
// unpacks it for the snapshotter and records it under its reference and its
// repo@digest reference. creds may be nil for anonymous pulls.
//
// A pull holds its repository's lock (see Remove) until the index holds
// its records, so a removal cannot delete them before it reads them back,
// and a containerd lease from its first fetch until its records exist, so
// no collection takes what it fetched (content and snapshots) before they
// reference it. Layers download while the config is fetched (see
// layerPrefetch) and unpack side by side (MaxConcurrentUnpacks).
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
	// The release may run early, beside the index refresh (see below);
	// OnceFunc makes the deferred call wait for that one.
	release = sync.OnceFunc(release)
	defer func() { release(); spans.Step("release-lease") }()
	spans.Step("lease")

	log.G(ctx).WithField("image", name).Debug("pulling image")
	var resolvedOnce sync.Once
	var resolved time.Time
	resolver := s.resolver(ctx, creds)
	prefetchCtx, stopPrefetch := context.WithCancel(ctx)
	prefetch := &layerPrefetch{
		store: s.opts.Client.ContentStore(),
		locks: &s.blobs,
		fetcher: sync.OnceValues(func() (remotes.Fetcher, error) {
			return resolver.Fetcher(prefetchCtx, name)
		}),
	}
	img, err := s.opts.Client.Pull(ctx, name,
		containerd.WithImageHandler(images.HandlerFunc(func(context.Context, ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			resolvedOnce.Do(func() { resolved = time.Now() })
			return nil, nil
		})),
		containerd.WithImageHandlerWrapper(prefetch.wrap(prefetchCtx)),
		containerd.WithResolver(resolver),
		containerd.WithPlatformMatcher(platforms.Default()),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(s.opts.Snapshotter),
		containerd.WithMaxConcurrentDownloads(s.opts.MaxConcurrentDownloads),
		containerd.WithUnpackOpts([]containerd.UnpackOpt{
			// Unpack layers side by side (containerd's parallel unpack:
			// each layer into a snapshot of its own, rebased onto its
			// parent at commit, for snapshotters that can rebase).
			containerd.WithUnpackLimiter(s.unpacks),
			containerd.WithUnpackDuplicationSuppressor(&s.blobs),
		}),
	)
	// The prefetches hold what they ingest under the pull's lease: they
	// end before it is released.
	stopPrefetch()
	prefetch.Wait()
	if err != nil {
		return Image{}, fmt.Errorf("pulling image %q: %w", ref, classifyPullError(err))
	}
	resolvedOnce.Do(func() {})
	spans.StepAt("resolve", resolved)
	spans.Step("fetch-unpack")
	// client.Pull made the record of name. Side by side: the index reads
	// it back, and the repo@digest record is made and read back; once
	// both records exist they hold the image's content and snapshots, so
	// the lease goes while the index reads.
	var records errgroup.Group
	records.Go(func() error { return s.index.Refresh(ctx, name) })
	if _, isDigested := named.(reference.Digested); !isDigested {
		digested, err := digestReference(named, img.Target().Digest)
		if err != nil {
			return Image{}, err
		}
		records.Go(func() error {
			if err := s.putRecord(ctx, images.Image{Name: digested, Target: img.Target(), Labels: img.Labels()}); err != nil {
				return err
			}
			released := make(chan struct{})
			go func() { release(); close(released) }()
			err := s.index.Refresh(ctx, digested)
			<-released
			return err
		})
	}
	if err := records.Wait(); err != nil {
		return Image{}, err
	}
	spans.Step("records-index")
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
