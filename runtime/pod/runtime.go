package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/names"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/timing"
	"golang.org/x/sync/singleflight"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Network is the node's pod network (package cni, through an adapter).
type Network interface {
	// Setup attaches pod p and returns its addresses, IPv4 first.
	Setup(ctx context.Context, p Sandbox) ([]string, error)
	// Teardown detaches pod p; it is idempotent.
	Teardown(ctx context.Context, p Sandbox) error
}

// InfraRunner runs the process that holds a pod's shared PID namespace.
type InfraRunner interface {
	// Start runs it; on error nothing of it is left.
	Start(ctx context.Context, p Sandbox, cgroupsPath string) error
	// Stop and Remove succeed when there is nothing to stop or remove.
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	// Pid is the running infra process's pid.
	Pid(ctx context.Context, id string) (uint32, error)
	// Image is the sandbox image every pod's infra runs from; "" means
	// slipway's own infra binary, run only for a shared PID namespace.
	Image() string
}

// Containers is what a pod needs of the container runtime.
type Containers interface {
	// StopInPod kills the running containers of pod id.
	StopInPod(ctx context.Context, podID string) error
	// RemoveInPod removes every container of pod id.
	RemoveInPod(ctx context.Context, podID string) error
}

// ShimGroups puts pods' containers in shared runc shims (package
// shimgroup).
type ShimGroups interface {
	// Assign puts a new pod in a group and returns its ID; "" gives the
	// pod a shim of its own.
	Assign(ctx context.Context, podID string) string
	// Release takes a pod out of its group once it has no task left; the
	// group's shim goes with its last pod.
	Release(ctx context.Context, podID string) error
}

// Options configure a Runtime. All fields but Hooks and ShimGroups are
// required.
type Options struct {
	Store      *Store
	Network    Network
	Infra      InfraRunner
	Containers Containers
	// RootDir holds each pod's persistent files (ROOT/pods); StateDir its
	// namespace pins and shm (STATE/pods).
	RootDir, StateDir string
	// CgroupsPath is the OCI cgroups path of a pod's cgroup.
	CgroupsPath func(parent, id string) (string, error)
	// EnsureImage pulls the sandbox image unless the node has it.
	EnsureImage func(ctx context.Context, ref string) error
	// InfraRootfs is the synthetic rootfs with the infra binary (see
	// NewInfra); the process that creates a pod's user namespace runs it.
	InfraRootfs string
	// Hooks are NRI's; nil runs none.
	Hooks Hooks
	// ShimGroups assigns pods to shared shims; nil gives each pod its own.
	ShimGroups ShimGroups
}

// Runtime runs pod sandboxes. It owns their lifecycle: the name
// registry, the per-pod locks (the Store's) and every record write.
type Runtime struct {
	opts  Options
	names *names.Registry
	// teardowns joins concurrent Stop and Remove calls of one pod.
	teardowns singleflight.Group
}

// undoTimeout bounds each cleanup step after a failed Run.
const undoTimeout = 30 * time.Second

// teardownTimeout bounds a Stop or Remove, which runs to its end even
// when its caller gives up.
const teardownTimeout = 5 * time.Minute

// NewRuntime returns a Runtime with the names of the pods already in the
// store bound.
func NewRuntime(opts Options) *Runtime {
	r := &Runtime{opts: opts, names: names.New()}
	for _, p := range opts.Store.List() {
		r.names.Bind(p.Name(), p.ID)
	}
	return r
}

// Run creates a ready pod: pinned namespaces (no pause image), its shared
// files, the network and, for a shared PID namespace or a sandbox image,
// the infra process. config must be valid. A retried call with the same
// pod name returns the first call's pod ID, waiting for it while it runs.
// On error nothing of the pod is left.
func (r *Runtime) Run(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (_ string, retErr error) {
	id := names.NewID()
	creation, existing, err := r.names.Reserve(ctx, Name(config.Metadata), id)
	if err != nil {
		return "", err
	}
	if creation == nil {
		log.G(ctx).WithField("podsandboxid", existing).Debug("pod exists; returning it")
		return existing, nil
	}
	defer func() { creation.Finish(retErr == nil) }()
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("podsandboxid", id))
	spans := timing.Start(ctx, "RunPodSandbox")
	defer spans.End()

	p := Sandbox{
		ID:             id,
		Config:         config,
		RuntimeHandler: runtimeHandler,
		CreatedAt:      time.Now(),
		State:          runtimeapi.PodSandboxState_SANDBOX_READY,
		Dir:            filepath.Join(r.opts.RootDir, id),
	}
	stateDir := filepath.Join(r.opts.StateDir, id)
	undo := func(what string, fn func(context.Context) error) {
		if retErr == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			log.G(ctx).WithError(err).Warnf("undoing %s after failed RunPodSandbox", what)
		}
	}

	if r.opts.ShimGroups != nil {
		// The group is recorded with the pod; its keeper, when the group
		// is new, starts meanwhile.
		p.ShimGroup = r.opts.ShimGroups.Assign(ctx, id)
		defer undo("shim group", func(ctx context.Context) error { return r.opts.ShimGroups.Release(ctx, id) })
	}
	defer undo("pod dirs", func(context.Context) error {
		return errors.Join(os.RemoveAll(p.Dir), os.RemoveAll(stateDir))
	})
	hostname, err := hostname(config)
	if err != nil {
		return "", err
	}
	if err := WriteFiles(p.Dir, config, hostname); err != nil {
		return "", err
	}
	spans.Step("files")

	nsOpts := config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	pinReq := namespaces.Request{Dir: filepath.Join(stateDir, "ns"), Sysctls: config.GetLinux().GetSysctls()}
	if nsOpts.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		pinReq.Kinds = append(pinReq.Kinds, namespaces.Net, namespaces.UTS)
		pinReq.Hostname = hostname
	}
	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		pinReq.Kinds = append(pinReq.Kinds, namespaces.IPC)
	}
	adopter, keepHolder, err := r.userNamespace(&pinReq, nsOpts)
	if err != nil {
		return "", err
	}
	var held *namespaces.Held
	if p.Namespaces, held, err = namespaces.PinHeld(pinReq); err != nil {
		return "", err
	}
	defer undo("namespaces", func(context.Context) error { return unpinAll(p.Namespaces) })
	spans.Step("pin")
	if held != nil {
		// Until the infra runner adopts it, the held process is ours to end.
		defer func() {
			if held != nil {
				_ = held.Process.Kill()
				_, _ = held.Process.Wait()
			}
		}()
	}

	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		p.ShmPath = filepath.Join(stateDir, "shm")
		defer undo("shm", func(context.Context) error { return UnmountShm(p.ShmPath) })
		if err := MountShm(p.ShmPath); err != nil {
			return "", err
		}
		spans.Step("shm")
	}

	// The network and the infra process are independent: set them up at
	// once. Setup can allocate and then fail, so its undo comes first.
	var setups sync.WaitGroup
	var netErr, infraErr error
	var ips []string
	if !p.HostNetwork() {
		netPod := p
		defer undo("pod network", func(ctx context.Context) error { return r.opts.Network.Teardown(ctx, netPod) })
		setups.Go(func() {
			if ips, netErr = r.opts.Network.Setup(ctx, netPod); netErr != nil {
				netErr = fmt.Errorf("setting up pod network: %w", netErr)
			}
		})
	}
	if sandboxImage := r.opts.Infra.Image(); nsOpts.GetPid() == runtimeapi.NamespaceMode_POD || sandboxImage != "" {
		p.Infra = true
		defer undo("infra process", func(ctx context.Context) error { return r.opts.Infra.Remove(ctx, id) })
		if keepHolder {
			infraErr = r.adoptInfra(ctx, p, adopter, held.Process)
			held = nil
		} else {
			infraErr = r.startInfra(ctx, p, sandboxImage)
		}
	}
	spans.Step("infra")
	setups.Wait()
	spans.Step("network")
	if err := errors.Join(netErr, infraErr); err != nil {
		return "", err
	}
	p.IPs = ips
	// Plugins see the pod before it is listed: nothing can use it while
	// they decide, and a plugin that connects meanwhile is synchronized
	// once it is recorded.
	unblock := r.hooks().BlockSync()
	defer unblock()
	if err := r.hooks().RunPodSandbox(ctx, p); err != nil {
		return "", err
	}
	spans.Step("nri")
	defer spans.Step("record")
	if err := r.opts.Store.Create(ctx, p); err != nil {
		undo := context.WithoutCancel(ctx)
		r.hooks().StopPodSandbox(undo, p)
		r.hooks().RemovePodSandbox(undo, p)
		return "", err
	}
	return id, nil
}

// startInfra starts p's infra process.
func (r *Runtime) startInfra(ctx context.Context, p Sandbox, sandboxImage string) error {
	if err := r.opts.EnsureImage(ctx, sandboxImage); err != nil {
		return err
	}
	cgroupsPath, err := r.opts.CgroupsPath(p.Config.GetLinux().GetCgroupParent(), p.ID)
	if err != nil {
		return err
	}
	return r.opts.Infra.Start(ctx, p, cgroupsPath)
}

// lockedPod locks pod id (an ID or unique prefix) and returns its record
// as it is under the lock; the caller must call unlock. On error nothing
// is held.
func (r *Runtime) lockedPod(id string) (_ Sandbox, unlock func(), _ error) {
	p, err := r.opts.Store.Get(id)
	if err != nil {
		return Sandbox{}, nil, err
	}
	unlock = r.opts.Store.Lock(p.ID)
	if p, err = r.opts.Store.Get(p.ID); err != nil {
		unlock()
		return Sandbox{}, nil, err
	}
	return p, unlock, nil
}

// WhileReady runs fn with pod id's lock held, if the pod is ready: a pod
// cannot be stopped or removed while fn creates something in it.
func (r *Runtime) WhileReady(id string, fn func(Sandbox) error) error {
	p, unlock, err := r.lockedPod(id)
	if err != nil {
		return err
	}
	defer unlock()
	if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return fmt.Errorf("pod sandbox %s is not ready: %w", p.ID, errdefs.ErrFailedPrecondition)
	}
	return fn(p)
}

// UpdateResources takes kubelet's notice that pod id's resources changed
// (in-place resize) to NRI plugins, with the pod's lock held. Pod-level
// cgroups are kubelet's and each container's resources arrive through its
// own update, so nothing else changes. A plugin's error fails the update.
func (r *Runtime) UpdateResources(ctx context.Context, id string, overhead, resources *runtimeapi.LinuxContainerResources) error {
	p, unlock, err := r.lockedPod(id)
	if err != nil {
		return err
	}
	defer unlock()
	if err := r.hooks().UpdatePodSandbox(ctx, p, overhead, resources); err != nil {
		return err
	}
	r.hooks().PostUpdatePodSandbox(ctx, p)
	return nil
}

// InfraPid is the pid of pod id's infra process.
func (r *Runtime) InfraPid(ctx context.Context, id string) (uint32, error) {
	return r.opts.Infra.Pid(ctx, id)
}

// hostname is the pod's hostname: the config's, else the node's (as
// containerd and CRI-O do; kubelet always sends one).
func hostname(config *runtimeapi.PodSandboxConfig) (string, error) {
	if h := config.GetHostname(); h != "" {
		return h, nil
	}
	return os.Hostname()
}

func unpinAll(pinned namespaces.Pinned) error {
	var errs []error
	for _, path := range pinned {
		errs = append(errs, namespaces.Unpin(path))
	}
	return errors.Join(errs...)
}
