package container

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootfsRemap are the snapshot options that ID-map a container's rootfs for
// a user namespace (none for the node's). The overlay snapshotter records
// the mappings in the snapshot's labels, chowns the new upper dir to the
// namespace's root and returns uidmap=/gidmap= mount options, with which
// the shim mounts the image layers ID-mapped (Linux 5.19+ for overlayfs):
// no layer is copied or chowned, and files the container writes land on
// the host as its mapped IDs. The snapshotter must report the "remap-ids"
// capability (UserNamespacesSupported); without it the labels would be
// ignored.
func rootfsRemap(uids, gids []specs.LinuxIDMapping) []snapshots.Opt {
	if len(uids) == 0 {
		return nil
	}
	return []snapshots.Opt{containerd.WithUserNSRemapperLabels(uids, gids)}
}

// remapIDsCapability is the snapshotter capability of ID-mapped layers
// (containerd's overlay snapshotter reports it after checking that the
// kernel ID-maps overlayfs mounts).
const remapIDsCapability = "remap-ids"

// UserNamespacesSupported reports whether pods may have user namespaces on
// this node: the kernel allows user namespaces and the snapshotter ID-maps
// rootfs layers (checked by containerd on its own file system).
func UserNamespacesSupported(ctx context.Context, client *containerd.Client, snapshotter string) (bool, error) {
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil {
		return false, nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n == 0 {
		return false, nil
	}
	caps, err := client.GetSnapshotterCapabilities(ctx, snapshotter)
	if err != nil {
		return false, fmt.Errorf("snapshotter %s capabilities: %w", snapshotter, err)
	}
	return slices.Contains(caps, remapIDsCapability), nil
}
