package images

import (
	"context"
	"fmt"

	"github.com/containerd/log"
)

// pullLeaseLabel marks the containerd leases the pulls of an earlier
// slipwayd held (pulls now run in containerd's transfer service, which
// leases what it fetches itself). Such a lease outlived its pull only when
// that slipwayd died during the pull.
const pullLeaseLabel = "io.slipway.images.pull"

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
