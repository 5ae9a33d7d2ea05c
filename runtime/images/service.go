package images

import (
	"context"
	"fmt"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/slipway-dev/slipway/runtime/keylock"
	"github.com/slipway-dev/slipway/runtime/metrics"
	"github.com/slipway-dev/slipway/runtime/timing"
	"google.golang.org/grpc"
)

// Options configure a Service.
type Options struct {
	// Client is connected to containerd with the CRI namespace as default.
	Client *containerd.Client
	// Snapshotter unpacks pulled images; empty means "overlayfs".
	Snapshotter string
	// HostsDir is a containerd-style hosts directory (HOST/hosts.toml);
	// empty means registries are reached directly. containerd's transfer
	// service reads it, so it is a path on containerd's node too.
	// (Download and unpack concurrency are containerd's: its transfer
	// service's max_concurrent_downloads and max_concurrent_unpacks.)
	HostsDir string
	// Metrics records pull durations and bytes; nil records nothing.
	Metrics *metrics.Metrics
}

// Service pulls, lists, inspects and removes images in one containerd
// namespace. Reads are served from an in-memory Index. A Service must be the
// only slipwayd in its namespace: at start it deletes the pull and
// collection leases it finds, as left by a slipwayd that died while
// pulling or collecting.
type Service struct {
	opts  Options
	index *Index
	// repos serializes pulls and removals per image repository
	// ("docker.io/library/busybox"): a pull holds its repository, a
	// removal every repository the image has a reference in.
	repos keylock.Locks
	// collector collects, in the background, what removals left
	// unreferenced.
	collector collector
}

// NewService builds a Service and syncs its index from containerd.
func NewService(ctx context.Context, opts Options) (*Service, error) {
	if opts.Snapshotter == "" {
		opts.Snapshotter = "overlayfs"
	}
	s := &Service{
		opts:  opts,
		index: NewIndex(opts.Client.ImageService(), indexContent(opts.Client), platforms.Default()),
	}
	if err := s.deleteStaleLeases(ctx); err != nil {
		return nil, err
	}
	// Collect what an earlier slipwayd left unreferenced: the content of
	// a pull it died in, or of a removal whose collection had not run.
	if err := s.collectGarbage(ctx); err != nil {
		return nil, err
	}
	if err := s.index.Sync(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// indexContent is the content provider of the index: sizedContent over a
// gRPC connection, containerd's own provider otherwise.
func indexContent(client *containerd.Client) content.Provider {
	conn, ok := client.Conn().(grpc.ClientConnInterface)
	if !ok {
		return client.ContentStore()
	}
	return sizedContent{Provider: client.ContentStore(), client: contentapi.NewContentClient(conn)}
}

// Get returns the image named by ID, tag or digest reference.
func (s *Service) Get(ref string) (Image, error) { return s.index.Get(ref) }

// List returns every image in the namespace.
func (s *Service) List() []Image { return s.index.List() }

// Sync rebuilds the index from containerd, after a containerd restart.
func (s *Service) Sync(ctx context.Context) error { return s.index.Sync(ctx) }

// Remove deletes every reference of the image named by ref (ID, tag or
// digest). A missing image is not an error. It holds the lock of every
// repository the image has a reference in, so it waits for pulls into them
// and a pull waits for it; a pull into another repository of the same
// content is protected by its lease instead.
func (s *Service) Remove(ctx context.Context, ref string) error {
	for range removeAttempts {
		img, err := s.index.Get(ref)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		repos := repositories(img.References)
		unlock, err := s.repos.Lock(ctx, repos...)
		if err != nil {
			return fmt.Errorf("removing image %q: waiting for pulls of it: %w", ref, err)
		}
		// A pull may have moved or added references while we waited.
		img, err = s.index.Get(ref)
		switch {
		case errdefs.IsNotFound(err):
			unlock()
			return nil
		case err != nil:
			unlock()
			return err
		case !subset(repositories(img.References), repos):
			unlock()
			continue
		}
		err = s.removeLocked(ctx, img)
		unlock()
		return err
	}
	return fmt.Errorf("removing image %q: its references kept changing: %w", ref, errdefs.ErrAborted)
}

// removeAttempts bounds how often Remove starts over when pulls keep adding
// references in repositories it does not hold.
const removeAttempts = 5

// removeLocked deletes img's records and has its content and snapshots
// collected in the background (Usage waits for that); the caller holds
// the locks of all its repositories. A pull that starts meanwhile is safe:
// what its lease holds is never collected.
func (s *Service) removeLocked(ctx context.Context, img Image) error {
	spans := timing.Start(ctx, "RemoveImage")
	defer spans.End()
	defer s.collector.Request(ctx, s.collectGarbage)
	store := s.opts.Client.ImageService()
	for _, name := range img.References {
		if err := store.Delete(ctx, name); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("removing image reference %q: %w", name, err)
		}
		spans.Step("delete")
		if err := s.index.Refresh(ctx, name); err != nil {
			log.G(ctx).WithError(err).WithField("image", name).Warn("refreshing image index")
		}
		spans.Step("index")
	}
	return nil
}
