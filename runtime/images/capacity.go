package images

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// Capacity is the size of the filesystem that holds the snapshotter's
// image and container layers.
type Capacity struct {
	// Mountpoint is the snapshotter's root directory.
	Mountpoint  string
	Bytes       uint64
	InodesTotal uint64
	InodesFree  uint64
}

// Capacity statfs's the snapshotter's root. It walks no snapshots, so it
// is cheap enough for every metrics scrape.
func (s *Service) Capacity(ctx context.Context) (Capacity, error) {
	root, err := s.snapshotterRoot(ctx)
	if err != nil {
		return Capacity{}, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return Capacity{}, fmt.Errorf("statfs %s: %w", root, err)
	}
	return Capacity{
		Mountpoint:  root,
		Bytes:       st.Blocks * uint64(st.Bsize),
		InodesTotal: st.Files,
		InodesFree:  st.Ffree,
	}, nil
}
