package spec

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/shimgroup"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI annotations containerd's CRI puts on container specs; tools (NRI
// plugins, runc hooks, crictl inspect) read them.
const (
	ContainerTypeAnnotation    = "io.kubernetes.cri.container-type"
	ContainerTypeContainer     = "container"
	SandboxNamespaceAnnotation = "io.kubernetes.cri.sandbox-namespace"
	SandboxUIDAnnotation       = "io.kubernetes.cri.sandbox-uid"
	SandboxNameAnnotation      = "io.kubernetes.cri.sandbox-name"
	ContainerNameAnnotation    = "io.kubernetes.cri.container-name"
	ImageNameAnnotation        = "io.kubernetes.cri.image-name"
	pidNamespaceField          = "linux.security_context.namespace_options.pid"
	usernsField                = "linux.security_context.namespace_options.userns_options"
	procNamespaceFormat        = "/proc/%d/ns/%s"
	pidNamespaceFile           = "pid"
)

// WithNamespaces puts the container in its pod's namespaces:
//   - network, IPC and UTS: the pod's pinned files; a kind the pod does not
//     pin is the node's. The container config's own network and IPC modes
//     are not consulted: a container cannot differ from its pod there.
//   - PID by the container's mode: CONTAINER a new namespace, POD the
//     infra process's (/proc/infraPID/ns/pid), NODE the node's, TARGET the
//     target container's (/proc/targetPID/ns/pid).
//   - mount: always new; cgroup: new when cgroupNS (containerd uses one on
//     cgroup v2 for unprivileged containers), else the node's.
//   - user: the pod's (WithUserNamespace): options, when given, must be
//     the pod's own.
func WithNamespaces(p pod.Sandbox, ns *runtimeapi.NamespaceOption, infraPID, targetPID int, cgroupNS bool) oci.SpecOpts {
	return must(namespacesOpt(p, ns, infraPID, targetPID, cgroupNS))
}

func namespacesOpt(p pod.Sandbox, ns *runtimeapi.NamespaceOption, infraPID, targetPID int, cgroupNS bool) (oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	for _, k := range []struct {
		kind namespaces.Kind
		t    specs.LinuxNamespaceType
	}{{namespaces.Net, specs.NetworkNamespace}, {namespaces.IPC, specs.IPCNamespace}, {namespaces.UTS, specs.UTSNamespace}} {
		if path, ok := p.Namespaces[k.kind]; ok {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: k.t, Path: path}))
		} else {
			opts = append(opts, oci.WithHostNamespace(k.t))
		}
	}
	switch mode := ns.GetPid(); mode {
	case runtimeapi.NamespaceMode_CONTAINER:
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace}))
	case runtimeapi.NamespaceMode_POD:
		if !p.Infra || infraPID <= 0 {
			return nil, invalid(pidNamespaceField, "POD, but pod %s has no shared PID namespace (its PID mode is %s)",
				p.ID, p.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid())
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{
			Type: specs.PIDNamespace, Path: fmt.Sprintf(procNamespaceFormat, infraPID, pidNamespaceFile),
		}))
	case runtimeapi.NamespaceMode_NODE:
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	case runtimeapi.NamespaceMode_TARGET:
		if ns.GetTargetId() == "" {
			return nil, invalid("linux.security_context.namespace_options.target_id", "is required with PID mode TARGET")
		}
		if targetPID <= 0 {
			return nil, invalid("linux.security_context.namespace_options.target_id", "container %s is not running", ns.GetTargetId())
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{
			Type: specs.PIDNamespace, Path: fmt.Sprintf(procNamespaceFormat, targetPID, pidNamespaceFile),
		}))
	default:
		return nil, invalid(pidNamespaceField, "unknown mode %d", mode)
	}
	userns, err := userNamespaceOpt(p, ns)
	if err != nil {
		return nil, err
	}
	opts = append(opts, userns)
	opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.MountNamespace}))
	if cgroupNS {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.CgroupNamespace}))
	} else {
		opts = append(opts, oci.WithHostNamespace(specs.CgroupNamespace))
	}
	return oci.Compose(opts...), nil
}

// WithAnnotations sets the annotations containerd's CRI sets on a
// container's spec; pod.SandboxIDAnnotation (the pod's ID) also groups the
// pod's containers into one runc shim, unless the pod is in a shim group
// (shimgroup.Annotation, which the shim prefers).
func WithAnnotations(p pod.Sandbox, config *runtimeapi.ContainerConfig) oci.SpecOpts {
	md := p.Config.GetMetadata()
	image := config.GetImage().GetUserSpecifiedImage()
	if image == "" {
		image = config.GetImage().GetImage()
	}
	a := map[string]string{
		pod.SandboxIDAnnotation:    p.ID,
		ContainerTypeAnnotation:    ContainerTypeContainer,
		SandboxNamespaceAnnotation: md.GetNamespace(),
		SandboxUIDAnnotation:       md.GetUid(),
		SandboxNameAnnotation:      md.GetName(),
		ContainerNameAnnotation:    config.GetMetadata().GetName(),
		ImageNameAnnotation:        image,
	}
	if p.ShimGroup != "" {
		a[shimgroup.Annotation] = p.ShimGroup
	}
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		return oci.WithAnnotations(a)(ctx, client, c, s)
	}
}
