package images

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/log"
)

// collectLeaseLabel marks the empty leases slipway creates only to delete
// them synchronously: deleting a lease with leases.SynchronousDelete is
// how a client runs containerd's garbage collector and waits for it. One
// outlives its collection only when slipwayd died during it.
const collectLeaseLabel = "io.slipway.images.collect"

const (
	// collectLeaseExpiry bounds how long containerd keeps a collection
	// lease a crashed slipwayd could not delete (it holds nothing).
	collectLeaseExpiry = time.Hour
	// collectTimeout bounds one background collection.
	collectTimeout = 5 * time.Minute
)

// collector runs containerd's garbage collector in the background after
// image removals, so a removal returns once the image's records are gone
// rather than after its content and snapshots are. A request that comes
// while a collection runs is served by one more collection after it (the
// running one may have marked before the request's records went). Wait
// returns when every collection requested before it is done; Usage waits,
// so the image filesystem usage never counts a removed image's layers.
type collector struct {
	mu sync.Mutex
	// running is true while a collection goroutine runs; again, that
	// it must collect once more; idle is closed when running turns false
	// (nil before the first request). mu guards all three.
	running bool
	again   bool
	idle    chan struct{}
}

// Request starts a background collection by collect, or queues one
// after the running collection. ctx's values (the namespace) carry over;
// its cancellation does not. collect's errors are logged.
func (c *collector) Request(ctx context.Context, collect func(context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.again = true
		return
	}
	c.running = true
	c.idle = make(chan struct{})
	ctx = context.WithoutCancel(ctx)
	go func() {
		for {
			cctx, cancel := context.WithTimeout(ctx, collectTimeout)
			if err := collect(cctx); err != nil {
				log.G(ctx).WithError(err).Warn("collecting the content and snapshots of removed images")
			}
			cancel()
			c.mu.Lock()
			if c.again {
				c.again = false
				c.mu.Unlock()
				continue
			}
			c.running = false
			close(c.idle)
			c.mu.Unlock()
			return
		}
	}()
}

// Wait waits until no collection runs or is queued, or ctx ends.
func (c *collector) Wait(ctx context.Context) error {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// collectGarbage runs containerd's garbage collector and waits for it:
// what no image record, lease, container or snapshot references goes.
func (s *Service) collectGarbage(ctx context.Context) error {
	ls := s.opts.Client.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(collectLeaseExpiry),
		leases.WithLabel(collectLeaseLabel, "true"))
	if err != nil {
		return fmt.Errorf("creating collection lease: %w", err)
	}
	if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil {
		return fmt.Errorf("collecting garbage: %w", err)
	}
	return nil
}
