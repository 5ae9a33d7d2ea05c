package shimgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/oomscore"
)

const (
	// kindLabel and keeperKind mark keeper containers (the label is
	// pod.KindLabel, which also marks pods, containers and infra).
	kindLabel  = "io.slipway.kind"
	keeperKind = "shim-keeper"
	// groupLabel holds a keeper's group ID.
	groupLabel = "io.slipway.shim-group"
	// runtimeName is the shim every group runs in.
	runtimeName = "io.containerd.runc.v2"
	// keeperPath is slipway-infra in the synthetic rootfs, under a name
	// of its own (a hard link, see LinkKeeper): keepers are told from pods'
	// infra processes by it.
	keeperPath = "/shim-keeper"
	infraPath  = "/infra"
	keeperUID  = 65535
	// keeperOOMScoreAdj keeps the OOM killer off the keeper as it is kept
	// off pause processes: its death costs a keeper restart.
	keeperOOMScoreAdj = -998
)

// LinkKeeper makes rootfs's keeper binary a hard link to its infra binary
// (see pod.NewInfra), after every copy of it: running keepers keep the old
// inode.
func LinkKeeper(rootfs string) error {
	dst := filepath.Join(rootfs, keeperPath)
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("linking the shim keeper binary: %w", err)
	}
	if err := os.Link(filepath.Join(rootfs, infraPath), dst); err != nil {
		return fmt.Errorf("linking the shim keeper binary: %w", err)
	}
	return nil
}

// KeeperID is the containerd container ID of group id's keeper.
func KeeperID(group string) string { return "slipway-shim-" + group }

// containerdKeepers runs keepers as containerd tasks.
type containerdKeepers struct{ opts Options }

// ensure makes group id's keeper task run (adopting a running one, or
// deleting a stopped or never-started one first) and follows it.
func (k containerdKeepers) ensure(ctx context.Context, id string) (<-chan struct{}, error) {
	task, err := k.ensureTask(ctx, id)
	if err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		k.follow(ctx, id, task)
	}()
	return exited, nil
}

// follow returns when task exits, following it through lost connections
// to containerd.
func (k containerdKeepers) follow(ctx context.Context, id string, task containerd.Task) {
	backoff := 50 * time.Millisecond
	for {
		if exitC, err := task.Wait(ctx); err == nil {
			if (<-exitC).Error() == nil {
				return
			}
		}
		// The wait broke (containerd away or restarting): find the task
		// again once containerd answers.
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
		t, err := k.loadTask(ctx, id)
		if errdefs.IsNotFound(err) {
			return
		}
		if err != nil {
			continue
		}
		if st, err := t.Status(ctx); err == nil && st.Status == containerd.Stopped {
			return
		}
		task = t
	}
}

// ensureTask returns group id's running keeper task: the one running, or a
// new one after deleting a stopped or never-started one.
func (k containerdKeepers) ensureTask(ctx context.Context, id string) (containerd.Task, error) {
	if err := k.recordSandbox(ctx, id); err != nil {
		return nil, err
	}
	cc, err := k.opts.Client.LoadContainer(ctx, KeeperID(id))
	if errdefs.IsNotFound(err) {
		cc, err = k.newContainer(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	if task, err := cc.Task(ctx, nil); err == nil {
		if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
			return task, nil
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("deleting the dead keeper task: %w", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("loading the keeper task: %w", err)
	}
	task, err := cc.NewTask(ctx, cio.NullIO)
	if err != nil {
		return nil, fmt.Errorf("creating the keeper task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		if _, derr := task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			log.G(ctx).WithError(derr).Warn("deleting the keeper task that did not start")
		}
		return nil, fmt.Errorf("starting the keeper task: %w", err)
	}
	return task, nil
}

// recordSandbox records a containerd sandbox of the keeper's ID: the
// containers of the group name it as their sandbox (WithSandbox), and
// containerd then creates their tasks in the shim that runs the sandbox's
// task, the keeper, without running the shim binary to find that shim
// (core/runtime/v2 ShimManager.Start). It also keeps containerd from
// reaping the keeper's task at its start, as exit guards do for containers.
func (k containerdKeepers) recordSandbox(ctx context.Context, id string) error {
	_, err := k.opts.Client.SandboxStore().Create(ctx, sandbox.Sandbox{
		ID:        KeeperID(id),
		Labels:    map[string]string{kindLabel: keeperKind, groupLabel: id},
		Runtime:   sandbox.RuntimeOpts{Name: runtimeName},
		CreatedAt: time.Now(),
		UpdatedAt: time.Now(),
	})
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("recording the keeper's sandbox: %w", err)
	}
	return nil
}

// newContainer records group id's keeper container: slipway-infra
// from the synthetic rootfs, read-only, as an unprivileged user with no
// capabilities, in the host's network namespace (a namespace of its own
// would cost its creation and teardown and the keeper never networks).
func (k containerdKeepers) newContainer(ctx context.Context, id string) (containerd.Container, error) {
	opts := []oci.SpecOpts{
		oci.WithRootFSPath(k.opts.Rootfs), oci.WithRootFSReadonly(),
		oci.WithProcessArgs(keeperPath), oci.WithEnv([]string{"GOMAXPROCS=1"}),
		oci.WithUserID(keeperUID), oci.WithCapabilities(nil), oci.WithNoNewPrivileges,
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithAnnotations(map[string]string{Annotation: id}),
		oomscore.WithClamped(keeperOOMScoreAdj),
	}
	if k.opts.CgroupsPath != nil {
		path, err := k.opts.CgroupsPath(KeeperID(id))
		if err != nil {
			return nil, err
		}
		if path != "" {
			opts = append(opts, oci.WithCgroup(path))
		}
	}
	if _, ok := namespaces.Namespace(ctx); !ok {
		ctx = namespaces.WithNamespace(ctx, k.opts.Client.DefaultNamespace())
	}
	cc, err := k.opts.Client.NewContainer(ctx, KeeperID(id),
		containerd.WithContainerLabels(map[string]string{kindLabel: keeperKind, groupLabel: id}),
		containerd.WithRuntime(runtimeName, nil),
		containerd.WithNewSpec(opts...),
	)
	if err != nil {
		return nil, fmt.Errorf("recording the keeper container: %w", err)
	}
	return cc, nil
}

// remove kills and deletes group id's keeper task and container; missing
// ones are fine.
func (k containerdKeepers) remove(ctx context.Context, id string) error {
	cc, err := k.opts.Client.LoadContainer(ctx, KeeperID(id))
	if errdefs.IsNotFound(err) {
		return k.deleteSandbox(ctx, id)
	}
	if err != nil {
		return err
	}
	if task, err := cc.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting the keeper task: %w", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("loading the keeper task: %w", err)
	}
	if err := cc.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting the keeper container: %w", err)
	}
	return k.deleteSandbox(ctx, id)
}

// deleteSandbox deletes the keeper's sandbox record; missing is fine.
func (k containerdKeepers) deleteSandbox(ctx context.Context, id string) error {
	if err := k.opts.Client.SandboxStore().Delete(ctx, KeeperID(id)); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting the keeper's sandbox record: %w", err)
	}
	return nil
}

// loadTask loads group id's keeper task.
func (k containerdKeepers) loadTask(ctx context.Context, id string) (containerd.Task, error) {
	cc, err := k.opts.Client.LoadContainer(ctx, KeeperID(id))
	if err != nil {
		return nil, err
	}
	return cc.Task(ctx, nil)
}

// Reconcile deletes the keepers of groups no recorded pod is in (a crash
// between a group's last pod's removal and its keeper's deletion, or in a
// RunPodSandbox that made the group) and starts, in the background, the
// keepers of the restored groups that have pods (adopting running ones).
// Call it after Restore, before serving.
func (g *Groups) Reconcile(ctx context.Context) error {
	keepers, err := g.opts.Client.Containers(ctx, fmt.Sprintf(`labels."%s"==%s`, kindLabel, keeperKind))
	if err != nil {
		return fmt.Errorf("listing shim keepers: %w", err)
	}
	records, err := g.opts.Client.SandboxStore().List(ctx, fmt.Sprintf(`labels."%s"==%s`, kindLabel, keeperKind))
	if err != nil {
		return fmt.Errorf("listing shim keepers' sandboxes: %w", err)
	}
	g.mu.Lock()
	var orphans []string
	for _, sb := range records {
		if id := sb.Labels[groupLabel]; g.groups[id] == nil {
			orphans = append(orphans, id)
		}
	}
	for _, k := range keepers {
		labels, err := k.Labels(ctx)
		if err != nil {
			g.mu.Unlock()
			return fmt.Errorf("reading the labels of keeper %s: %w", k.ID(), err)
		}
		if id := labels[groupLabel]; g.groups[id] == nil {
			orphans = append(orphans, id)
		}
	}
	for _, gr := range g.groups {
		if gr.keeper == keeperNone {
			g.startKeeperLocked(ctx, gr)
		}
	}
	g.mu.Unlock()
	for _, id := range orphans {
		log.G(ctx).WithField("shimgroup", id).Info("deleting the keeper of a shim group with no pod")
		if err := g.keepers.remove(ctx, id); err != nil {
			return fmt.Errorf("deleting the keeper of shim group %s: %w", id, err)
		}
	}
	return nil
}

// Groups returns each group's ID with its pods' IDs, for tests and
// diagnostics.
func (g *Groups) Groups() map[string][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string][]string{}
	for id, gr := range g.groups {
		for p := range gr.pods {
			out[id] = append(out[id], p)
		}
	}
	return out
}
