package pod

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// InfraAdopter is an InfraRunner that can take, as a pod's infra process,
// the process that created the pod's user namespace (and a PID namespace
// inside it). A Go process cannot join a user namespace, so the direct
// infra of a pod with one must be that process.
type InfraAdopter interface {
	// Adopt makes proc pod p's infra process and puts it in cgroupsPath.
	// It owns proc from then on: on error proc is killed and reaped.
	Adopt(ctx context.Context, p Sandbox, proc *os.Process, cgroupsPath string) error
}

// userNamespace adds the pod's user namespace to req when its options ask
// for one. keep says the process creating it stays as the pod's infra
// process, adopted by the returned InfraAdopter: for a shared PID
// namespace when the infra runner runs processes itself. A runner that
// goes through runc joins the pinned user namespace instead.
func (r *Runtime) userNamespace(req *namespaces.Request, nsOpts *runtimeapi.NamespaceOption) (adopter InfraAdopter, keep bool, err error) {
	uids, gids, err := IDMappings(nsOpts.GetUsernsOptions())
	if err != nil || uids == nil {
		return nil, false, err
	}
	if nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE {
		return nil, false, invalidUserns("", "a pod in its own user namespace cannot use the node's PID namespace")
	}
	adopter, direct := r.opts.Infra.(InfraAdopter)
	keep = direct && nsOpts.GetPid() == runtimeapi.NamespaceMode_POD && r.opts.Infra.Image() == ""
	req.User = &namespaces.UserNS{UIDs: uids, GIDs: gids, Keep: keep, Spawn: r.spawnHolder(uids, keep)}
	return adopter, keep, nil
}

// spawnHolder returns the Spawn of a pod's user namespace: the infra binary
// from the synthetic rootfs, as infraUID inside the namespace when the
// mapping has it (the infra process's user), else as its root.
func (r *Runtime) spawnHolder(uids []specs.LinuxIDMapping, keep bool) func(*syscall.SysProcAttr) (*os.Process, error) {
	return func(attr *syscall.SysProcAttr) (*os.Process, error) {
		// The child resolves paths as a user the host does not know, which
		// may not search STATE: it enters the rootfs through an open fd.
		dir, err := os.Open(r.opts.InfraRootfs)
		if err != nil {
			return nil, fmt.Errorf("opening infra rootfs: %w", err)
		}
		defer dir.Close()
		devNull, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		defer devNull.Close()
		uid := uint32(0)
		if keep && uids[0].Size > infraUID {
			uid = infraUID
		}
		attr.Chroot = fmt.Sprintf("/proc/self/fd/%d", dir.Fd())
		attr.Setsid = true
		attr.Credential = &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}
		return os.StartProcess(infraPath, []string{infraPath}, &os.ProcAttr{
			Dir:   "/",
			Env:   infraEnv,
			Files: []*os.File{devNull, devNull, devNull},
			Sys:   attr,
		})
	}
}

// adoptInfra hands proc, pod p's user namespace holder, to the infra
// runner as p's infra process.
func (r *Runtime) adoptInfra(ctx context.Context, p Sandbox, adopter InfraAdopter, proc *os.Process) error {
	cgroupsPath, err := r.opts.CgroupsPath(p.Config.GetLinux().GetCgroupParent(), p.ID)
	if err != nil {
		_ = proc.Kill()
		_, _ = proc.Wait()
		return err
	}
	return adopter.Adopt(ctx, p, proc, cgroupsPath)
}

// withIDMappings sets the spec's user namespace mappings (runc checks them
// against the namespace it joins).
func withIDMappings(uids, gids []specs.LinuxIDMapping) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.UIDMappings, s.Linux.GIDMappings = uids, gids
		return nil
	}
}
