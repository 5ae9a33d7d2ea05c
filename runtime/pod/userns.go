package pod

import (
	"fmt"
	"math"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UsernsField is the user namespace options' field, relative to a
// PodSandboxConfig or ContainerConfig.
const UsernsField = "linux.security_context.namespace_options.userns_options"

// IDMappings checks a pod's (or container's) user namespace options and
// returns its mappings; nil mappings mean the node's user namespace. Nil
// options and mode NODE without mappings are the node's; mode POD needs
// exactly one UID and one GID mapping (as kubelet sends), each mapping
// container ID 0, non-empty, and inside the 32-bit ID space. NODE with
// mappings, CONTAINER and TARGET are refused. Errors wrap
// errdefs.ErrInvalidArgument and name the field from UsernsField.
func IDMappings(u *runtimeapi.UserNamespace) (uids, gids []specs.LinuxIDMapping, err error) {
	if u == nil {
		return nil, nil, nil
	}
	switch mode := u.GetMode(); mode {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids()) > 0 || len(u.GetGids()) > 0 {
			return nil, nil, invalidUserns("", "mode NODE takes no mappings; got %d UID and %d GID mappings", len(u.GetUids()), len(u.GetGids()))
		}
		return nil, nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, nil, invalidUserns(".mode", "%s is not allowed for a user namespace (POD or NODE)", mode)
	}
	if uids, err = idMapping("uids", u.GetUids()); err != nil {
		return nil, nil, err
	}
	if gids, err = idMapping("gids", u.GetGids()); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

func idMapping(field string, m []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	if len(m) != 1 {
		return nil, invalidUserns("."+field, "mode POD needs exactly one mapping, got %d", len(m))
	}
	e := m[0]
	switch {
	case e == nil:
		return nil, invalidUserns("."+field+"[0]", "is null")
	case e.ContainerId != 0:
		return nil, invalidUserns("."+field+"[0].container_id", "is %d: container ID 0 must be mapped", e.ContainerId)
	case e.Length == 0:
		return nil, invalidUserns("."+field+"[0].length", "must not be 0")
	case uint64(e.HostId)+uint64(e.Length) > math.MaxUint32:
		return nil, invalidUserns("."+field+"[0]", "host IDs %d+%d pass the 32-bit ID space", e.HostId, e.Length)
	}
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: e.HostId, Size: e.Length}}, nil
}

func invalidUserns(sub, format string, args ...any) error {
	return fmt.Errorf("%s%s: %s: %w", UsernsField, sub, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// UserNamespace returns the pod's user namespace mappings, nil when the pod
// uses the node's. The config was checked by IDMappings when the pod ran.
func (s Sandbox) UserNamespace() (uids, gids []specs.LinuxIDMapping) {
	uids, gids, _ = IDMappings(s.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	return uids, gids
}
