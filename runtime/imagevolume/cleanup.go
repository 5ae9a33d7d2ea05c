package imagevolume

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/moby/sys/mountinfo"
)

// Cleanup, at start-up before serving, removes the image volumes of every
// container that live says is gone (a crash between mounting them and
// recording the container, or between deleting the container and
// removing them) and mounts again the views of live containers that are
// not mounted (after a reboot emptied the state directory), so a created
// container still starts with its volumes.
func (m *Manager) Cleanup(ctx context.Context, live func(id string) bool) error {
	ids := map[string]bool{}
	ls, err := m.leases.List(ctx, fmt.Sprintf(`labels."%s"`, ContainerLabel))
	if err != nil {
		return fmt.Errorf("listing image volume leases: %w", err)
	}
	for _, l := range ls {
		if id := l.Labels[ContainerLabel]; id != "" {
			ids[id] = true
		}
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading image volume dir: %w", err)
	}
	for _, e := range entries {
		ids[e.Name()] = true
	}
	var errs []error
	for id := range ids {
		if live(id) {
			errs = append(errs, m.remount(ctx, id))
		} else {
			errs = append(errs, m.Remove(ctx, id))
		}
	}
	return errors.Join(errs...)
}

// remount mounts each view of container id that is not mounted at its
// target.
func (m *Manager) remount(ctx context.Context, id string) error {
	var errs []error
	err := m.snapshots.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		target := info.Labels[TargetLabel]
		if target == "" {
			return nil
		}
		if mounted, err := mountinfo.Mounted(target); err == nil && mounted {
			return nil
		}
		mounts, err := m.snapshots.Mounts(ctx, info.Name)
		if err == nil {
			err = mountAt(mounts, target)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remounting image volume %s of container %s: %w", info.Name, id, err))
		}
		return nil
	}, fmt.Sprintf(`labels."%s"==%s`, ContainerLabel, id))
	if err != nil {
		return fmt.Errorf("listing image volumes of container %s: %w", id, err)
	}
	return errors.Join(errs...)
}
