package spec

import (
	"context"
	"fmt"
	"slices"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// WithUserNamespace puts the container in its pod's user namespace: the
// pinned namespace file and its mappings (runc checks they agree), or the
// node's when the pod has none. A container's own user namespace options
// may be left out (it inherits the pod's) or must be the pod's: a
// container cannot have a user namespace of its own.
func WithUserNamespace(p pod.Sandbox, ns *runtimeapi.NamespaceOption) oci.SpecOpts {
	return must(userNamespaceOpt(p, ns))
}

func userNamespaceOpt(p pod.Sandbox, ns *runtimeapi.NamespaceOption) (oci.SpecOpts, error) {
	podUIDs, podGIDs := p.UserNamespace()
	if opts := ns.GetUsernsOptions(); opts != nil {
		uids, gids, err := pod.IDMappings(opts)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(uids, podUIDs) || !slices.Equal(gids, podGIDs) {
			return nil, invalid(usernsField, "differs from the pod's user namespace (%s): a container runs in its pod's",
				describeUserns(podUIDs, podGIDs))
		}
	}
	if podUIDs == nil {
		return oci.WithHostNamespace(specs.UserNamespace), nil
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		return nil, invalid(pidNamespaceField, "NODE is not allowed in a pod with its own user namespace")
	}
	hostNetwork := p.HostNetwork()
	path, ok := p.Namespaces[namespaces.User]
	if !ok {
		return nil, invalid(usernsField, "pod %s has no pinned user namespace", p.ID)
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.UserNamespace
		})
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: path})
		s.Linux.UIDMappings = slices.Clone(podUIDs)
		s.Linux.GIDMappings = slices.Clone(podGIDs)
		if hostNetwork {
			bindSys(s)
		}
		return nil
	}, nil
}

func describeUserns(uids, gids []specs.LinuxIDMapping) string {
	if uids == nil {
		return "the node's"
	}
	return "uids " + describeMapping(uids[0]) + ", gids " + describeMapping(gids[0])
}

func describeMapping(m specs.LinuxIDMapping) string {
	return fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
}

// podFileMappings are the CRI mappings of the idmapped mounts of the pod's
// files (hostname, hosts, resolv.conf) in a pod with a user namespace, so
// that its root owns them as the node's root does; nil without one.
func podFileMappings(p pod.Sandbox) (uids, gids []*runtimeapi.IDMapping) {
	podUIDs, podGIDs := p.UserNamespace()
	if podUIDs == nil {
		return nil, nil
	}
	conv := func(m specs.LinuxIDMapping) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{ContainerId: m.ContainerID, HostId: m.HostID, Length: m.Size}}
	}
	return conv(podUIDs[0]), conv(podGIDs[0])
}

// ociMappings converts CRI ID mappings to OCI ones (nil for none).
func ociMappings(m []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	if len(m) == 0 {
		return nil
	}
	out := make([]specs.LinuxIDMapping, len(m))
	for i, e := range m {
		out[i] = specs.LinuxIDMapping{ContainerID: e.GetContainerId(), HostID: e.GetHostId(), Size: e.GetLength()}
	}
	return out
}

// bindSys replaces the spec's sysfs with a read-only bind of the node's: a
// user namespace that does not own the network namespace (the node's) may
// not mount sysfs.
func bindSys(s *oci.Spec) {
	for i, m := range s.Mounts {
		if m.Destination == "/sys" {
			s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
				Options: []string{"rbind", "rro", "nosuid", "nodev", "noexec"}}
		}
	}
}

// checkMountMappings checks a CRI mount's ID mappings: none, or both UID
// and GID mappings, each non-empty.
func checkMountMappings(field func(string) string, m *runtimeapi.Mount) error {
	if len(m.UidMappings) == 0 && len(m.GidMappings) == 0 {
		return nil
	}
	if len(m.UidMappings) == 0 || len(m.GidMappings) == 0 {
		return invalid(field("uidMappings"), "an ID-mapped mount needs both uidMappings and gidMappings")
	}
	for _, list := range []struct {
		name string
		m    []*runtimeapi.IDMapping
	}{{"uidMappings", m.UidMappings}, {"gidMappings", m.GidMappings}} {
		for j, e := range list.m {
			if e == nil || e.Length == 0 {
				return invalid(fmt.Sprintf("%s[%d]", field(list.name), j), "is null or empty")
			}
		}
	}
	return nil
}

// checkMappedMountsNeedUserns refuses ID-mapped mounts in a pod without a
// user namespace.
func checkMappedMountsNeedUserns(p pod.Sandbox, mounts []*runtimeapi.Mount) error {
	if uids, _ := p.UserNamespace(); uids != nil {
		return nil
	}
	for i, m := range mounts {
		if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
			return invalid(fmt.Sprintf("mounts[%d].uidMappings", i), "ID-mapped mounts need a pod with its own user namespace")
		}
	}
	return nil
}
