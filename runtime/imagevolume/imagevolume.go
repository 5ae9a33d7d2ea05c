// Package imagevolume mounts CRI image volumes (Mount.image, kubelet's
// ImageVolume feature): a read-only view of an image's root filesystem,
// or of one directory in it (image_sub_path), that a container bind-mounts.
//
// Each volume of container ID is a containerd snapshot view named
// ViewKey(ID, i) of the image's unpacked layers, held by the lease
// LeaseID(ID) (so containerd's GC keeps the view, and through it the
// image's layer snapshots, even when the image itself is removed) and
// mounted on the host at DIR/ID/i. The lease and the views carry
// ContainerLabel=ID and each view its mount point in TargetLabel, so
// Cleanup finds what a crash left and remounts what a reboot unmounted.
// Nothing is kept in memory.
package imagevolume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/images"
	"golang.org/x/sys/unix"
)

// Labels on the lease and the views of a container's image volumes.
const (
	// ContainerLabel is the ID of the container the volume belongs to.
	ContainerLabel = "io.slipway.image-volume.container"
	// TargetLabel is the host path a view is mounted at.
	TargetLabel = "io.slipway.image-volume.target"
)

// Volume is one image volume to mount.
type Volume struct {
	// Field names the mount in errors ("config.mounts[2]").
	Field string
	// Image is the name of the containerd image record to mount.
	Image string
	// SubPath is the directory of the image to mount, relative to its
	// root; "" mounts the root.
	SubPath string
}

// Options configure a Manager.
type Options struct {
	Client      *containerd.Client
	Snapshotter string
	// Dir holds the mount points, DIR/CONTAINER-ID/INDEX.
	Dir string
}

// Manager mounts and removes image volumes. It is safe for concurrent use
// on different containers; calls for one container must not overlap (the
// container runtime's lifecycle lock and name reservation see to that).
type Manager struct {
	dir       string
	leases    leases.Manager
	snapshots snapshots.Snapshotter
	// chainID unpacks the named image if needed and returns the chain ID
	// of its layers (images.UnpackedChainID); errdefs.ErrNotFound when
	// there is no such image record.
	chainID func(ctx context.Context, image string) (string, error)
}

// New returns a Manager.
func New(opts Options) *Manager {
	return &Manager{
		dir:       opts.Dir,
		leases:    opts.Client.LeasesService(),
		snapshots: opts.Client.SnapshotService(opts.Snapshotter),
		chainID: func(ctx context.Context, name string) (string, error) {
			img, err := opts.Client.GetImage(ctx, name)
			if err != nil {
				return "", err
			}
			return images.UnpackedChainID(ctx, img, opts.Snapshotter)
		},
	}
}

// LeaseID is the lease that holds container id's views.
func LeaseID(id string) string { return "slipway-image-volumes-" + id }

// ViewKey is the snapshot key of container id's i-th image volume.
func ViewKey(id string, i int) string { return fmt.Sprintf("slipway-image-volume-%s-%d", id, i) }

// Mount mounts vols for container id and returns, in order, the host path
// each volume's bind mount takes its files from. A SubPath that is not a
// directory inside the image is an errdefs.ErrInvalidArgument naming
// FIELD.image_sub_path; an image record that is missing is
// errdefs.ErrNotFound naming FIELD.image. On error nothing is left.
func (m *Manager) Mount(ctx context.Context, id string, vols []Volume) (_ []string, retErr error) {
	if len(vols) == 0 {
		return nil, nil
	}
	_, err := m.leases.Create(ctx, leases.WithID(LeaseID(id)), leases.WithLabel(ContainerLabel, id))
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return nil, fmt.Errorf("taking the image volumes' lease: %w", err)
	}
	defer func() {
		if retErr != nil {
			if err := m.Remove(context.WithoutCancel(ctx), id); err != nil {
				log.G(ctx).WithError(err).Warn("removing image volumes of failed container")
			}
		}
	}()
	ctx = leases.WithLease(ctx, LeaseID(id))
	paths := make([]string, len(vols))
	for i, v := range vols {
		target := filepath.Join(m.dir, id, strconv.Itoa(i))
		if err := m.mountView(ctx, id, i, v, target); err != nil {
			return nil, err
		}
		p, err := resolveSubPath(target, v.SubPath)
		if err != nil {
			return nil, fmt.Errorf("%s.image_sub_path: %w", v.Field, err)
		}
		paths[i] = p
	}
	return paths, nil
}

// mountView makes the view of v's image and mounts it at target.
func (m *Manager) mountView(ctx context.Context, id string, i int, v Volume, target string) error {
	chainID, err := m.chainID(ctx, v.Image)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%s.image: image %q is not on the node; pull it first: %w", v.Field, v.Image, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s.image %q: %w", v.Field, v.Image, err)
	}
	mounts, err := m.snapshots.View(ctx, ViewKey(id, i), chainID,
		snapshots.WithLabels(map[string]string{ContainerLabel: id, TargetLabel: target}))
	if err != nil {
		return fmt.Errorf("%s.image: making a view of image %q: %w", v.Field, v.Image, err)
	}
	return mountAt(mounts, target)
}

// mountAt mounts a view's mounts at target, creating it.
func mountAt(mounts []mount.Mount, target string) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return fmt.Errorf("creating image volume mount point: %w", err)
	}
	if err := mount.All(mounts, target); err != nil {
		return fmt.Errorf("mounting image volume at %s: %w", target, err)
	}
	return nil
}

// Remove unmounts container id's image volumes and deletes their views
// and lease. Removing what is not there succeeds.
func (m *Manager) Remove(ctx context.Context, id string) error {
	var errs []error
	var keys []string
	err := m.snapshots.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		keys = append(keys, info.Name)
		if t := info.Labels[TargetLabel]; t != "" {
			errs = append(errs, unmountDir(t))
		}
		return nil
	}, fmt.Sprintf(`labels."%s"==%s`, ContainerLabel, id))
	if err != nil {
		return fmt.Errorf("listing image volumes of container %s: %w", id, err)
	}
	// Mount points whose view is gone (a crash before the label was read).
	dir := filepath.Join(m.dir, id)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		errs = append(errs, unmountDir(filepath.Join(dir, e.Name())))
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		// A view still mounted must stay: its lease keeps it.
		return fmt.Errorf("unmounting image volumes of container %s: %w", id, err)
	}
	for _, k := range keys {
		if err := m.snapshots.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("removing image volume view %s: %w", k, err)
		}
	}
	err = m.leases.Delete(ctx, leases.Lease{ID: LeaseID(id)})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting image volume lease of container %s: %w", id, err)
	}
	return nil
}

// unmountDir unmounts everything mounted at dir (lazily: a container's
// bind mount of it is its own) and removes dir, which must then be empty.
func unmountDir(dir string) error {
	if err := mount.UnmountAll(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
