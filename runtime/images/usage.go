package images

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
)

// Usage is the disk the snapshotter's image layers and container layers use.
type Usage struct {
	Timestamp time.Time
	// Mountpoint is the snapshotter's root directory.
	Mountpoint string
	Bytes      int64
	Inodes     int64
}

// Usage sums the usage of every snapshot of the service's snapshotter,
// after the collection of removed images' snapshots is done.
func (s *Service) Usage(ctx context.Context) (Usage, error) {
	if err := s.collector.Wait(ctx); err != nil {
		return Usage{}, fmt.Errorf("waiting for removed images to be collected: %w", err)
	}
	root, err := s.snapshotterRoot(ctx)
	if err != nil {
		return Usage{}, err
	}
	sn := s.opts.Client.SnapshotService(s.opts.Snapshotter)
	u := Usage{Timestamp: time.Now(), Mountpoint: root}
	err = sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		su, err := sn.Usage(ctx, info.Name)
		if err != nil {
			return nil // removed while walking
		}
		u.Bytes += su.Size
		u.Inodes += su.Inodes
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("walking %s snapshots: %w", s.opts.Snapshotter, err)
	}
	return u, nil
}

// snapshotterRoot asks containerd's introspection service for the root
// directory the snapshotter plugin exports.
func (s *Service) snapshotterRoot(ctx context.Context) (string, error) {
	resp, err := s.opts.Client.IntrospectionService().Plugins(ctx,
		fmt.Sprintf(`type==io.containerd.snapshotter.v1,id==%s`, s.opts.Snapshotter))
	if err != nil {
		return "", fmt.Errorf("introspecting snapshotter %s: %w", s.opts.Snapshotter, err)
	}
	for _, p := range resp.Plugins {
		if root := p.Exports["root"]; root != "" {
			return root, nil
		}
	}
	return "", fmt.Errorf("snapshotter %s exports no root directory", s.opts.Snapshotter)
}
