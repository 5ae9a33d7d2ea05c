package images

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/log"
)

// pullLeaseLabel marks the containerd leases slipway's pulls hold. A lease
// so labelled outlives its pull only when slipwayd died during the pull.
const pullLeaseLabel = "io.slipway.images.pull"

const (
	// pullLeaseExpiry bounds how long containerd keeps a lease a crashed
	// slipwayd could not delete, as containerd's own client does.
	pullLeaseExpiry = 24 * time.Hour
	// leaseDeleteTimeout bounds deleting a lease after its pull.
	leaseDeleteTimeout = 30 * time.Second
)

// lease creates a containerd lease for one pull and returns ctx carrying it;
// whatever containerd writes or finds in its store under that ctx (blobs,
// snapshots) is kept from garbage collection until release deletes the
// lease. release runs on a context of its own, so it works after ctx ends,
// and logs its errors.
func (s *Service) lease(ctx context.Context) (_ context.Context, release func(), _ error) {
	ls := s.opts.Client.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(pullLeaseExpiry),
		leases.WithLabel(pullLeaseLabel, "true"))
	if err != nil {
		return nil, nil, fmt.Errorf("creating lease: %w", err)
	}
	release = func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseDeleteTimeout)
		defer cancel()
		if err := ls.Delete(ctx, l); err != nil {
			log.G(ctx).WithError(err).WithField("lease", l.ID).Warn("deleting pull lease")
		}
	}
	return leases.WithLease(ctx, l.ID), release, nil
}

// deleteStaleLeases deletes the pull and collection leases left by an
// earlier slipwayd that died while pulling or collecting; call it before
// serving pulls.
func (s *Service) deleteStaleLeases(ctx context.Context) error {
	ls := s.opts.Client.LeasesService()
	// containerd ORs the filters.
	stale, err := ls.List(ctx, fmt.Sprintf("labels.%q", pullLeaseLabel), fmt.Sprintf("labels.%q", collectLeaseLabel))
	if err != nil {
		return fmt.Errorf("listing pull leases: %w", err)
	}
	for _, l := range stale {
		if err := ls.Delete(ctx, l); err != nil {
			return fmt.Errorf("deleting stale pull lease %s: %w", l.ID, err)
		}
		log.G(ctx).WithField("lease", l.ID).Info("deleted the lease of an interrupted pull or collection")
	}
	return nil
}
