package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/cri"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	"github.com/slipway-dev/slipway/runtime/shimgroup"
	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podRuntime is what the CRI's pod calls run on.
type podRuntime struct {
	store   *pod.Store
	network *cni.Manager
	// infra runs pods' infra processes: directly (the default) or, with a
	// sandbox image or the systemd cgroup driver, through containerd.
	infra pod.InfraRunner
	// shimInfra is the containerd-run kind, also used to clean up.
	shimInfra *pod.Infra
	// shims puts pods' containers in shared runc shims.
	shims *shimgroup.Groups
}

// newRuntime returns the pod runtime over r, containers and images.
func (r *podRuntime) newRuntime(cfg Config, containers pod.Containers, images cri.ImageService, hooks pod.Hooks) *pod.Runtime {
	driver := cfg.cgroupDriver()
	return pod.NewRuntime(pod.Options{
		Store:      r.store,
		Network:    podNetwork{r.network},
		Infra:      r.infra,
		Containers: containers,
		RootDir:    filepath.Join(cfg.Root, "pods"),
		StateDir:   filepath.Join(cfg.State, "pods"),
		CgroupsPath: func(parent, id string) (string, error) {
			return spec.CgroupsPath(driver, parent, id)
		},
		EnsureImage: func(ctx context.Context, ref string) error { return ensureImage(ctx, images, ref) },
		InfraRootfs: infraRootfs(cfg),
		Hooks:       hooks,
		ShimGroups:  r.shims,
	})
}

// ensureImage pulls ref unless the node has it; "" needs nothing.
func ensureImage(ctx context.Context, images cri.ImageService, ref string) error {
	if ref == "" {
		return nil
	}
	if _, err := images.Get(ref); err == nil {
		return nil
	}
	if _, err := images.Pull(ctx, ref, nil); err != nil {
		return fmt.Errorf("pulling sandbox image: %w", err)
	}
	return nil
}

// startPods loads the pod records from containerd, prepares the infra
// process's rootfs and the CNI network (writing the default conflist into
// an empty conf dir).
func startPods(ctx context.Context, cfg Config, client *containerd.Client) (*podRuntime, error) {
	store := pod.NewStore(client.SandboxStore())
	if _, err := store.Load(ctx); err != nil {
		return nil, err
	}
	network, err := cni.New(ctx, cni.Options{
		ConfDir:       cfg.CNI.ConfDir,
		BinDirs:       cfg.CNI.BinDirs,
		CacheDir:      filepath.Join(cfg.Root, "cni", "cache"),
		WriteDefault:  true,
		DefaultSubnet: cfg.CNI.DefaultSubnet,
	})
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	binary, err := helperBinary(cfg.CRI.InfraBinary, "slipway-infra", "cri.infra_binary")
	if err != nil {
		return nil, err
	}
	rootfs := infraRootfs(cfg)
	shimInfra, err := pod.NewInfra(client, binary, rootfs)
	if err != nil {
		return nil, err
	}
	if err := shimgroup.LinkKeeper(rootfs); err != nil {
		return nil, err
	}
	driver := cfg.cgroupDriver()
	shims := shimgroup.New(shimgroup.Options{
		Client:       client,
		PodsPerGroup: cfg.CRI.ShimPodsPerGroup,
		Rootfs:       rootfs,
		CgroupsPath:  func(id string) (string, error) { return keeperCgroupsPath(driver, id) },
		IdleGrace:    shimGroupIdleGrace,
	})
	groupOf := map[string]string{}
	for _, p := range store.List() {
		groupOf[p.ID] = p.ShimGroup
	}
	shims.Restore(groupOf)
	r := &podRuntime{store: store, network: network, infra: shimInfra, shimInfra: shimInfra, shims: shims}
	switch {
	case cfg.CRI.SandboxImage != "":
		if _, err := images.ParseReference(cfg.CRI.SandboxImage); err != nil {
			return nil, fmt.Errorf("cri.sandbox_image: %w", err)
		}
		shimInfra.UseImage(normalizedImage(cfg.CRI.SandboxImage))
	case cfg.cgroupDriver() == "cgroupfs":
		direct, err := pod.NewDirectInfra(binary, rootfs, filepath.Join(cfg.State, "pods"))
		if err != nil {
			return nil, err
		}
		r.infra = direct
	}
	reconcilePods(ctx, cfg, client, r)
	if err := shims.Reconcile(ctx); err != nil {
		log.G(ctx).WithError(err).Warn("reconcile: shim groups (retried at the next start)")
	}
	return r, nil
}

// keeperCgroupsPath is the cgroup of shim group keeper id: a node-level
// cgroup of its own (/ID with cgroupfs, system.slice with systemd), not
// containerd's default /NAMESPACE/ID beside the pods' containers.
func keeperCgroupsPath(driver, id string) (string, error) {
	if driver == "systemd" {
		return spec.CgroupsPath(driver, "", id)
	}
	return spec.CgroupsPath(driver, "/", id)
}

// shimGroupIdleGrace is how long a shim group whose last pod was removed
// keeps its shim for a new pod: a pod replaced by another (kubelet removes
// the old one first, or a churning benchmark does) then finds a shim
// running instead of paying for a new one.
const shimGroupIdleGrace = 2 * time.Second

// infraRootfs is the synthetic rootfs the infra binary runs from.
func infraRootfs(cfg Config) string { return filepath.Join(cfg.State, "infra", "rootfs") }

// normalizedImage is ref's fully qualified form (ref is known valid).
func normalizedImage(ref string) string {
	named, _ := images.ParseReference(ref)
	return named.String()
}

// helperBinary finds one of slipway's helper executables: the configured
// path, else beside the slipwayd executable, else in PATH.
func helperBinary(configured, name, setting string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found beside slipwayd or in PATH; set %s: %w", name, setting, err)
	}
	return filepath.Abs(path)
}

// reconcilePods removes what a crash in the middle of RunPodSandbox or
// RemovePodSandbox can leave without a pod record: network attachments,
// infra containers, namespace pins and pod directories. Errors are logged;
// a later start tries again.
func reconcilePods(ctx context.Context, cfg Config, client *containerd.Client, r *podRuntime) {
	known := map[string]bool{}
	stopped := map[string]bool{}
	for _, p := range r.store.List() {
		known[p.ID] = true
		stopped[p.ID] = p.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	logErr := func(err error, what, id string) {
		if err != nil {
			log.G(ctx).WithError(err).WithField("podsandboxid", id).Warnf("reconcile: %s", what)
		}
	}
	attached, err := r.network.Attached()
	logErr(err, "listing network attachments", "")
	for _, id := range attached {
		switch {
		case !known[id]:
			log.G(ctx).WithField("podsandboxid", id).Info("reconcile: tearing down the network of a pod with no record")
			logErr(r.network.Teardown(ctx, cni.Pod{ID: id}), "network teardown", id)
		case stopped[id]:
			// StopPodSandbox records the stop while its DEL runs: a crash
			// in between leaves a stopped pod attached.
			log.G(ctx).WithField("podsandboxid", id).Info("reconcile: finishing the network teardown of a stopped pod")
			logErr(r.network.Teardown(ctx, cni.Pod{ID: id}), "network teardown", id)
		}
	}
	infras, err := client.Containers(ctx, fmt.Sprintf(`labels."%s"==infra`, pod.KindLabel))
	logErr(err, "listing infra containers", "")
	for _, c := range infras {
		if !known[c.ID()] {
			logErr(r.shimInfra.Remove(ctx, c.ID()), "removing infra container", c.ID())
		}
	}
	stateDir := filepath.Join(cfg.State, "pods")
	for _, dir := range []string{stateDir, filepath.Join(cfg.Root, "pods")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if known[e.Name()] {
				continue
			}
			if dir == stateDir {
				logErr(r.infra.Remove(ctx, e.Name()), "removing infra process", e.Name())
				// What a crash left unrecorded in the pod's namespaces: an
				// infra process forked before its pid file was written.
				killed, err := namespaces.KillMembers(filepath.Join(dir, e.Name(), "ns"))
				logErr(err, "ending processes in the pod's namespaces", e.Name())
				if len(killed) > 0 {
					log.G(ctx).WithField("podsandboxid", e.Name()).WithField("pids", killed).Info("reconcile: ended processes left in the namespaces of a pod with no record")
				}
				for _, kind := range []namespaces.Kind{namespaces.Net, namespaces.IPC, namespaces.UTS, namespaces.User} {
					logErr(namespaces.Unpin(filepath.Join(dir, e.Name(), "ns", string(kind))), "unpinning namespace", e.Name())
				}
				logErr(pod.UnmountShm(filepath.Join(dir, e.Name(), "shm")), "unmounting shm", e.Name())
			}
			logErr(os.RemoveAll(filepath.Join(dir, e.Name())), "removing pod directory", e.Name())
		}
	}
}
