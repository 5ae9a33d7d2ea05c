package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/distribution/reference"
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
// The fetch and unpack run inside containerd, in its transfer service (see
// transferPull), as containerd's own CRI pulls: no blob crosses the gRPC
// connection and no per-blob write, label or snapshot call is made from
// here. The transfer holds a containerd lease of its own from its first
// fetch until it has made the record of ref, so no collection takes what
// it fetched (content and snapshots) before a record references it.
//
// A pull holds its repository's lock (see Remove) until the index holds
// its records, so a removal cannot delete them (the record of ref before
// the repo@digest record exists, or either before the index reads them
// back) meanwhile.
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

	log.G(ctx).WithField("image", name).Debug("pulling image")
	pulled, err := s.transferPull(ctx, name, creds)
	if err != nil {
		return Image{}, fmt.Errorf("pulling image %q: %w", ref, s.classifyTransferError(ctx, name, creds, err))
	}
	spans.Step("transfer")
	target := pulled.target
	if target == nil {
		// The progress stream did not report the record: read it.
		rec, err := s.opts.Client.ImageService().Get(ctx, name)
		if err != nil {
			return Image{}, fmt.Errorf("pulling image %q: reading its record: %w", ref, err)
		}
		target = &rec.Target
		spans.Step("get-record")
	}
	s.opts.Metrics.AddPulledBytes(int(pulled.bytes))
	// The transfer made the record of name. Side by side: the index reads
	// it back, and the repo@digest record is made and read back.
	var records errgroup.Group
	records.Go(func() error { return s.index.Refresh(ctx, name) })
	if _, isDigested := named.(reference.Digested); !isDigested {
		digested, err := digestReference(named, target.Digest)
		if err != nil {
			return Image{}, err
		}
		records.Go(func() error {
			if err := s.putRecord(ctx, images.Image{Name: digested, Target: *target}); err != nil {
				return err
			}
			return s.index.Refresh(ctx, digested)
		})
	}
	if err := records.Wait(); err != nil {
		return Image{}, err
	}
	spans.Step("records-index")
	img, err := s.index.Get(name)
	if err == nil {
		s.opts.Metrics.ObservePull(time.Since(start))
	}
	return img, err
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

// classifyTransferError gives a failed transfer's error an errdefs class
// the CRI can report. A registry's refusal reaches slipwayd from the
// transfer service as a gRPC Unknown (its types do not cross the
// connection), so for an error without a class the resolve is replayed
// here, through the same hosts and credentials, where the registry's
// answer keeps its type (see classifyPullError); when that resolve
// succeeds, the transfer failed later and its error is returned as is.
func (s *Service) classifyTransferError(ctx context.Context, name string, creds Credentials, err error) error {
	if ctx.Err() != nil || errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) ||
		errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err) || errdefs.IsCanceled(err) {
		return err
	}
	if _, _, resolveErr := s.resolver(ctx, creds).Resolve(ctx, name); resolveErr != nil {
		if classified := classifyPullError(resolveErr); classified != resolveErr {
			return classified
		}
	}
	return err
}

// resolver resolves through the hosts directory.
func (s *Service) resolver(ctx context.Context, creds Credentials) remotes.Resolver {
	opts := config.HostOptions{Credentials: creds}
	if s.opts.HostsDir != "" {
		opts.HostDir = config.HostDirFromRoot(s.opts.HostsDir)
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, opts)})
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
