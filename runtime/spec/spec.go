// Package spec builds the OCI runtime spec of a CRI container from
// composable options in containerd's shape (oci.SpecOpts), so the caller
// passes them to containerd's WithNewSpec next to containerd's own.
//
// Opts validates a CRI container config against its pod and returns the
// options in the order they must be applied. Each With* option also works
// alone on a spec from oci.GenerateSpec; an option built from invalid input
// returns that error when applied. Errors about CRI input wrap
// errdefs.ErrInvalidArgument, ErrNotImplemented for features slipway does
// not have, or ErrFailedPrecondition where the node does not allow what is
// asked (mount propagation on a private host mount), and name the field
// relative to the ContainerConfig ("linux.security_context.run_as_group:
// needs run_as_user or run_as_username: invalid argument").
//
// The options ignore their oci.Client: the image's files are read through
// Input.RootfsMounts, so they also work with a nil client in tests.
package spec

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Input is everything a container's spec is made from.
type Input struct {
	// ID is the container's ID; it names its cgroup.
	ID string
	// Config is the CRI container config; required.
	Config *runtimeapi.ContainerConfig
	// Pod is the container's pod; Pod.Config is its PodSandboxConfig.
	Pod pod.Sandbox
	// InfraPID is the pid of the pod's infra process when Pod.Infra (for
	// PID namespace POD); 0 otherwise.
	InfraPID int
	// TargetPID is the pid of the target container's process, for PID
	// namespace TARGET; 0 otherwise.
	TargetPID int
	// Image is the image's config (entrypoint, cmd, env, working dir, user).
	Image ocispec.Image
	// RootfsMounts are the rootfs snapshot's mounts. They are read (never
	// written) only when the user or its groups must be looked up in the
	// image's /etc/passwd and /etc/group.
	RootfsMounts []mount.Mount
	// Rootfs, when set, replaces RootfsMounts: it returns the mounts once
	// the snapshot is prepared, and is called only when the files are read.
	Rootfs func(context.Context) ([]mount.Mount, error)
	// UserFiles, when set, keeps the image's user files by ImageID (the
	// image config's digest), so that later containers of the image do
	// not wait for Rootfs.
	UserFiles *UserFiles
	ImageID   string
	// CgroupDriver is "cgroupfs" (or empty) or "systemd".
	CgroupDriver string
	// CDIDevices are the qualified names of the CDI devices the container
	// gets (from CDI_devices and the cdi.k8s.io annotations); they are
	// resolved against CDI when the spec is made.
	CDIDevices []string
	// CDI resolves CDIDevices; nil when CDI is disabled, and then any
	// CDIDevices are a FailedPrecondition error.
	CDI CDIRegistry
	// SeccompRoot is the directory for Localhost seccomp profiles given as
	// relative paths; absolute paths are used as they are.
	SeccompRoot string
}

// Opts validates in and returns the options that make its container's
// spec, in the order they must be applied, starting from containerd's
// default spec (oci.GenerateSpec). The options read the node's facts from
// DetectHost.
func Opts(in Input) ([]oci.SpecOpts, error) {
	return buildOpts(in, DetectHost())
}

func buildOpts(in Input, h Host) ([]oci.SpecOpts, error) {
	c := in.Config
	if c == nil {
		return nil, invalid("config", "is required")
	}
	if in.Pod.Config == nil {
		return nil, invalid("sandbox_config", "is required")
	}
	sc := c.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.Pod.Config.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, invalid("linux.security_context.privileged", "the pod is not privileged, so its containers cannot be")
	}
	if in.ID == "" {
		return nil, invalid("container id", "is required")
	}
	if err := CheckLogPath(in.Pod.Config.GetLogDirectory(), c.GetLogPath()); err != nil {
		return nil, err
	}
	cgroupsPath, err := CgroupsPath(in.CgroupDriver, in.Pod.Config.GetLinux().GetCgroupParent(), in.ID)
	if err != nil {
		return nil, err
	}

	process, err := processOpt(c, in.Image.Config, in.Pod.Config.GetHostname())
	if err != nil {
		return nil, err
	}
	ns, err := namespacesOpt(in.Pod, sc.GetNamespaceOptions(), in.InfraPID, in.TargetPID, h.CgroupV2 && !privileged)
	if err != nil {
		return nil, err
	}
	if err := checkMappedMountsNeedUserns(in.Pod, c.GetMounts()); err != nil {
		return nil, err
	}
	mounts, err := mountsOpt(c.GetMounts(), PodMounts(in.Pod, c), h, lookupMount)
	if err != nil {
		return nil, err
	}
	devices, err := devicesOpt(c.GetDevices())
	if err != nil {
		return nil, err
	}
	caps, err := capabilitiesOpt(sc.GetCapabilities(), h.Capabilities)
	if err != nil {
		return nil, err
	}
	root := MountsRootFS(in.RootfsMounts)
	if in.Rootfs != nil {
		root = waitingRootFS(in.Rootfs)
	}
	root = in.UserFiles.RootFS(in.ImageID, root)
	user, err := userOpt(sc, in.Image.Config.User, root)
	if err != nil {
		return nil, err
	}
	resources, err := resourcesOpt(c.GetLinux().GetResources(), h)
	if err != nil {
		return nil, err
	}
	oom, err := oomScoreAdjOpt(c.GetLinux().GetResources())
	if err != nil {
		return nil, err
	}
	seccomp, err := seccompOpt(sc, in.SeccompRoot)
	if err != nil {
		return nil, err
	}
	apparmor, err := apparmorOpt(sc, h.AppArmor)
	if err != nil {
		return nil, err
	}

	opts := []oci.SpecOpts{
		WithBase,
		process,
		ns,
		mounts,
		WithMaskedPaths(sc),
		devices,
		caps,
	}
	if privileged {
		opts = append(opts, withPrivileged(h.Capabilities))
	}
	opts = append(opts,
		WithNoNewPrivileges(sc.GetNoNewPrivs()),
		WithReadonlyRootfs(sc.GetReadonlyRootfs()),
		resources,
		oom,
		// CDI after devices, privileged and resources: its device
		// nodes and cgroup rules are added to theirs.
		WithCDIDevices(in.CDI, in.CDIDevices),
	)
	if cgroupsPath != "" {
		opts = append(opts, oci.WithCgroup(cgroupsPath))
	}
	opts = append(opts,
		WithAnnotations(in.Pod, c),
		user,
		// seccomp last: the default profile allows syscalls by the
		// capabilities the process has.
		seccomp,
		apparmor,
	)
	return opts, nil
}

// invalid is an InvalidArgument error about a CRI field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// unsupported is a NotImplemented error about a CRI field.
func unsupported(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrNotImplemented)
}

// failed is an option that returns err: exported constructors hand it out
// for invalid input, so the error surfaces when the spec is made.
func failed(err error) oci.SpecOpts {
	return func(context.Context, oci.Client, *containers.Container, *oci.Spec) error { return err }
}

// must turns an (option, error) pair into an option.
func must(o oci.SpecOpts, err error) oci.SpecOpts {
	if err != nil {
		return failed(err)
	}
	return o
}

func nop(context.Context, oci.Client, *containers.Container, *oci.Spec) error { return nil }
