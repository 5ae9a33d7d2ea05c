package spec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
)

// Container paths of the files a pod gives its containers.
const (
	etcHostname   = "/etc/hostname"
	etcHosts      = "/etc/hosts"
	etcResolvConf = "/etc/resolv.conf"
	devShm        = "/dev/shm"
	cgroupRoot    = "/sys/fs/cgroup"
	// HostsFile is the file in a pod's Dir that becomes its containers'
	// /etc/hosts when it exists.
	HostsFile = pod.HostsFile
)

// bindOptions are the mount_options a CRI mount may add: flags that only
// restrict or tune a bind mount. Read-only-ness and propagation come from
// their own fields.
var bindOptions = map[string]bool{
	"noexec": true, "exec": true, "nosuid": true, "suid": true, "nodev": true, "dev": true,
	"noatime": true, "atime": true, "relatime": true, "norelatime": true, "strictatime": true,
	"nostrictatime": true, "nodiratime": true, "diratime": true, "nosymfollow": true, "symfollow": true,
}

// PodMounts are the mounts of the files a pod shares with config's
// container, as CRI mounts, each left out when config mounts its path
// itself or its source is missing:
//   - /etc/hostname, /etc/resolv.conf and /etc/hosts from p.Dir, read-only
//     when the container's rootfs is. /etc/hosts is mounted only when p.Dir
//     has a HostsFile: kubelet mounts its own /etc/hosts into every pod with
//     an IP, and a pod without one keeps its image's.
//   - in a pod with a user namespace, the three files are idmapped with
//     its mappings;
//   - /dev/shm: p.ShmPath, the pod's tmpfs; with host IPC the node's
//     /dev/shm (as containerd does); otherwise the spec's private tmpfs.
func PodMounts(p pod.Sandbox, config *runtimeapi.ContainerConfig) []*runtimeapi.Mount {
	ro := config.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	var mounts []*runtimeapi.Mount
	add := func(containerPath, hostPath string, readonly bool) *runtimeapi.Mount {
		if hostPath == "" || inMounts(containerPath, config.GetMounts()) {
			return nil
		}
		if _, err := os.Stat(hostPath); err != nil {
			return nil
		}
		m := &runtimeapi.Mount{ContainerPath: containerPath, HostPath: hostPath, Readonly: readonly}
		mounts = append(mounts, m)
		return m
	}
	if p.Dir != "" {
		uids, gids := podFileMappings(p)
		for _, f := range [][2]string{{etcHostname, pod.HostnameFile}, {etcHosts, HostsFile}, {etcResolvConf, pod.ResolvConfFile}} {
			if m := add(f[0], filepath.Join(p.Dir, f[1]), ro); m != nil {
				m.UidMappings, m.GidMappings = uids, gids
			}
		}
	}
	switch _, podIPC := p.Namespaces[namespaces.IPC]; {
	case p.ShmPath != "":
		add(devShm, p.ShmPath, false)
	case !podIPC:
		add(devShm, devShm, false)
	}
	return mounts
}

func inMounts(containerPath string, mounts []*runtimeapi.Mount) bool {
	return slices.ContainsFunc(mounts, func(m *runtimeapi.Mount) bool {
		return path.Clean(m.GetContainerPath()) == containerPath
	})
}

// WithMounts adds the CRI mounts and extra (PodMounts), a CRI mount
// winning over an extra one at the same path, plus a read-only cgroupfs at
// /sys/fs/cgroup. They are ordered so that no mount hides a deeper one, and
// they replace the default mounts at their paths (all of /dev/* when /dev
// is mounted). Each is an rbind mount of its host path, which is created
// as a directory when missing and has its symlinks resolved (as containerd
// does), with:
//   - readonly: "ro"; recursive_read_only: "rro" (needs Linux 5.12,
//     readonly and private propagation);
//   - propagation PRIVATE: "rprivate"; HOST_TO_CONTAINER: "rslave", and the
//     host path must sit on a shared or slave mount; BIDIRECTIONAL:
//     "rshared" on a shared mount. Both set the rootfs propagation.
//   - mount_options: bind flags such as noexec, nosuid, nodev.
//
// selinux_relabel is ignored: slipway nodes run without SELinux. A mount
// with uidMappings and gidMappings is an ID-mapped bind (runc), which needs
// a pod user namespace (Opts checks). Image volumes whose image the caller
// has not mounted (host_path empty) are NotImplemented.
func WithMounts(criMounts, extra []*runtimeapi.Mount, h Host) oci.SpecOpts {
	return must(mountsOpt(criMounts, extra, h, lookupMount))
}

// lookupFunc returns the mount a path lives on.
type lookupFunc func(path string) (*mountinfo.Info, error)

func mountsOpt(criMounts, extra []*runtimeapi.Mount, h Host, lookup lookupFunc) (oci.SpecOpts, error) {
	seen := map[string]int{}
	for i, m := range criMounts {
		if err := validateMount(i, m, h); err != nil {
			return nil, err
		}
		dst := path.Clean(m.GetContainerPath())
		if j, ok := seen[dst]; ok {
			return nil, invalid(fmt.Sprintf("mounts[%d].container_path", i), "%q is also mounts[%d]'s", dst, j)
		}
		seen[dst] = i
	}
	mounts := slices.Clone(criMounts)
	for _, m := range extra {
		if !inMounts(path.Clean(m.GetContainerPath()), criMounts) {
			mounts = append(mounts, m)
		}
	}
	sort.SliceStable(mounts, func(i, j int) bool { return depth(mounts[i]) < depth(mounts[j]) })
	withCgroup := !inMounts(cgroupRoot, mounts)

	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		dests := map[string]bool{}
		for _, m := range mounts {
			dests[path.Clean(m.GetContainerPath())] = true
		}
		kept := s.Mounts[:0:0]
		for _, m := range s.Mounts {
			dst := path.Clean(m.Destination)
			if dests[dst] || (dests["/dev"] && strings.HasPrefix(dst, "/dev/")) {
				continue
			}
			kept = append(kept, m)
		}
		s.Mounts = kept
		if withCgroup {
			s.Mounts = append(s.Mounts, cgroupMount(s, h, lookup))
		}
		for _, m := range mounts {
			sm, err := bindMount(m, s, lookup)
			if err != nil {
				return err
			}
			s.Mounts = append(s.Mounts, sm)
		}
		return nil
	}, nil
}

func depth(m *runtimeapi.Mount) int {
	return strings.Count(path.Clean(m.GetContainerPath()), "/")
}

func validateMount(i int, m *runtimeapi.Mount, h Host) error {
	field := func(name string) string { return fmt.Sprintf("mounts[%d].%s", i, name) }
	if m == nil {
		return invalid(fmt.Sprintf("mounts[%d]", i), "is null")
	}
	if err := checkAbsPath(field("container_path"), m.ContainerPath); err != nil {
		return err
	}
	if m.HostPath == "" {
		if m.Image != nil {
			return unsupported(field("image"), "image volume %q must be mounted by the caller and given as host_path", m.Image.GetImage())
		}
		return invalid(field("host_path"), "is required")
	}
	if m.Image != nil && !m.Readonly {
		return invalid(field("readonly"), "must be true for an image volume: image volumes are read-only")
	}
	if m.Image == nil && m.ImageSubPath != "" {
		return invalid(field("image_sub_path"), "is only for image volumes (image is not set)")
	}
	if err := checkAbsPath(field("host_path"), m.HostPath); err != nil {
		return err
	}
	if err := checkMountMappings(field, m); err != nil {
		return err
	}
	if _, ok := runtimeapi.MountPropagation_name[int32(m.Propagation)]; !ok {
		return invalid(field("propagation"), "unknown mode %d", m.Propagation)
	}
	if m.RecursiveReadOnly {
		if !m.Readonly && m.Image == nil {
			return invalid(field("recursive_read_only"), "needs readonly")
		}
		if m.Propagation != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return invalid(field("recursive_read_only"), "needs private propagation, not %s", m.Propagation)
		}
		if !h.RecursiveReadOnly {
			return fmt.Errorf("%s: %w: this kernel cannot make mounts read-only recursively (needs Linux 5.12): %w",
				field("recursive_read_only"), crierrors.ErrRROUnsupported, errdefs.ErrInvalidArgument)
		}
	}
	for j, o := range m.MountOptions {
		if !bindOptions[o] {
			return invalid(fmt.Sprintf("mounts[%d].mount_options[%d]", i, j), "%q is not a bind mount flag slipway applies", o)
		}
	}
	return nil
}

// checkAbsPath refuses a path that is not absolute, has a NUL, or has a
// ".." element: kubelet sends clean paths, and one that climbs is either a
// mistake or an attempt to leave the directory it names. Symlinks are
// another matter: a host path's are resolved when the mount is made (a
// hostPath volume may be a symlink), and runc resolves a container path's
// inside the container's rootfs, so they cannot lead out of it.
func checkAbsPath(field, p string) error {
	if !path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return invalid(field, "%q is not an absolute path", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return invalid(field, "%q has a \"..\" element", p)
	}
	return nil
}

// bindMount is the OCI mount for m; it creates and resolves the host path
// and checks its propagation. It may set s's rootfs propagation.
func bindMount(m *runtimeapi.Mount, s *oci.Spec, lookup lookupFunc) (specs.Mount, error) {
	src := m.GetHostPath()
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(src, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("creating missing host path of mount %s: %w", m.ContainerPath, err)
		}
	} else if err != nil {
		return specs.Mount{}, fmt.Errorf("host path of mount %s: %w", m.ContainerPath, err)
	}
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("resolving host path of mount %s: %w", m.ContainerPath, err)
	}
	opts := []string{"rbind"}
	switch m.Propagation {
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		if err := checkPropagation(src, m, lookup, "shared:"); err != nil {
			return specs.Mount{}, err
		}
		opts = append(opts, "rshared")
		s.Linux.RootfsPropagation = "rshared"
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		if err := checkPropagation(src, m, lookup, "shared:", "master:"); err != nil {
			return specs.Mount{}, err
		}
		opts = append(opts, "rslave")
		if s.Linux.RootfsPropagation != "rshared" {
			s.Linux.RootfsPropagation = "rslave"
		}
	default:
		opts = append(opts, "rprivate")
	}
	switch {
	case m.RecursiveReadOnly:
		opts = append(opts, "rro")
	case m.Readonly || m.Image != nil:
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}
	opts = append(opts, m.MountOptions...)
	return specs.Mount{Destination: m.ContainerPath, Type: "bind", Source: src, Options: opts,
		UIDMappings: ociMappings(m.UidMappings), GIDMappings: ociMappings(m.GidMappings)}, nil
}

// checkPropagation fails unless the mount that src lives on has one of the
// given propagation tags (mountinfo's optional fields).
func checkPropagation(src string, m *runtimeapi.Mount, lookup lookupFunc, tags ...string) error {
	info, err := lookup(src)
	if err != nil {
		return fmt.Errorf("checking propagation of mount %s: %w", m.ContainerPath, err)
	}
	for _, f := range strings.Fields(info.Optional) {
		for _, t := range tags {
			if strings.HasPrefix(f, t) {
				return nil
			}
		}
	}
	want := "shared"
	if len(tags) > 1 {
		want = "shared or slave"
	}
	return fmt.Errorf("mount %s: propagation %s needs host path %q on a %s mount, but %q is private (make it shared with `mount --make-rshared %s`): %w",
		m.ContainerPath, m.Propagation, src, want, info.Mountpoint, info.Mountpoint, errdefs.ErrFailedPrecondition)
}

// lookupMount returns the mount path lives on: the longest mount point
// containing it, the topmost of those mounted there.
func lookupMount(p string) (*mountinfo.Info, error) {
	infos, err := mountinfo.GetMounts(mountinfo.ParentsFilter(p))
	if err != nil {
		return nil, err
	}
	var best *mountinfo.Info
	for _, i := range infos {
		if best == nil || len(i.Mountpoint) >= len(best.Mountpoint) {
			best = i
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no mount holds %s", p)
	}
	return best, nil
}

// cgroupMount is the container's read-only cgroupfs. A container in the
// node's cgroup namespace on cgroup v2 shares the node's cgroup2
// superblock, so the node's nsdelegate and memory_recursiveprot options
// are kept rather than cleared by the container's mount.
func cgroupMount(s *oci.Spec, h Host, lookup lookupFunc) specs.Mount {
	opts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	ownNS := slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.CgroupNamespace
	})
	if h.CgroupV2 && !ownNS {
		if info, err := lookup(cgroupRoot); err == nil {
			for _, o := range strings.Split(info.VFSOptions, ",") {
				if o == "nsdelegate" || o == "memory_recursiveprot" {
					opts = append(opts, o)
				}
			}
		}
	}
	return specs.Mount{Destination: cgroupRoot, Type: "cgroup", Source: "cgroup", Options: opts}
}
