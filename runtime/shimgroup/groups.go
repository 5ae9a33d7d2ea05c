// Package shimgroup puts several pods' containers in one containerd runc
// shim, and keeps each such shim alive while its group has pods.
//
// Why: the runc shim is most of what an idle pod costs (17.4 MiB RSS, about
// 4 MiB of it private, per shim), and a pod's first StartContainer paid for
// starting one. containerd's runc shim puts every task whose spec carries
// the same io.containerd.runc.v2.group annotation in one process; one shim
// for 10 pods measured 18.5 MiB RSS and 4.9 MiB private in all.
//
// The runc shim exits when its last task is deleted, and it counts a task
// only once runc has created it: a task created while the shim's last task
// is deleted dies with the shim ("ttrpc: closed") and leaves its cgroup.
// With a shim per pod, slipway serialized task creation and deletion per
// pod; across a group that lock would serialize StartContainer across pods.
// Instead each group has a keeper: a task running slipway-infra (from the
// synthetic infra rootfs, no capabilities, the host network) that is created
// when the group gets its first pod, and deleted only when its last pod is
// removed, after every task of its pods is gone. While the keeper runs the
// shim cannot exit, so container tasks are created and deleted with no
// lock between them (they hold the group's lock shared); only (re)creating
// or deleting the keeper holds it exclusively. The keeper is started in the
// background by the RunPodSandbox that makes its group, so the pod's first
// StartContainer finds the shim running.
//
// A killed group shim takes every task of the group with it (containerd
// reports each exit, and the container monitors record them). The keeper's
// own watch sees its exit and starts a new keeper at once; until it runs,
// task creation and deletion in the group wait for it. Between the shim's
// death and containerd's report of it a task can still start a new shim
// with no keeper in it; the keeper started next joins that shim.
//
// A pod's group is recorded on its pod record (pod.Sandbox.ShimGroup), so a
// restarted slipwayd rebuilds the groups (Restore) and deletes the keepers
// of groups that have no pod left (Reconcile). Group IDs are never reused:
// a group that loses its last pod is closed (after Options.IdleGrace, if no
// new pod joined it meanwhile), and new pods go to new groups.
package shimgroup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/keylock"
	"github.com/slipway-dev/slipway/runtime/names"
)

// Annotation is the spec annotation the runc shim groups tasks by; it
// takes precedence over the pod's sandbox ID.
const Annotation = "io.containerd.runc.v2.group"

// Options configure Groups.
type Options struct {
	Client *containerd.Client
	// PodsPerGroup is how many pods share a shim; 1 or less gives each
	// pod its own shim and no keeper (the pod's containers' tasks are then
	// created and deleted one at a time).
	PodsPerGroup int
	// Rootfs is the synthetic rootfs with the slipway-infra binary (see
	// pod.NewInfra): the keeper runs it.
	Rootfs string
	// CgroupsPath is the OCI cgroups path of a keeper named id; "" leaves
	// containerd's default.
	CgroupsPath func(id string) (string, error)
	// IdleGrace is how long a group whose last pod left stays open for a
	// new pod (pods replaced one by one find their shim running); 0 closes
	// it at once.
	IdleGrace time.Duration
}

// Groups assigns pods to shim groups and runs the groups' keepers. It is
// safe for concurrent use.
type Groups struct {
	opts Options

	mu sync.Mutex
	// groups are the open and closing groups by ID; byPod maps a pod to
	// its group ("" for none). mu guards both and every group's pods,
	// closed and keeper fields.
	groups map[string]*group
	byPod  map[string]string
	// podLocks serialize task creation and deletion of pods without a
	// group, whose shim exits with their last task.
	podLocks keylock.Locks
	// keepers runs the keeper tasks (containerd's; fakes in tests).
	keepers keepers
}

// keepers runs groups' keeper tasks.
type keepers interface {
	// ensure makes group id's keeper run and returns a channel closed
	// when it exits.
	ensure(ctx context.Context, id string) (exited <-chan struct{}, err error)
	// remove kills and deletes group id's keeper; missing is fine.
	remove(ctx context.Context, id string) error
}

// group is one shared shim.
type group struct {
	id   string
	pods map[string]bool
	// closed is set when the group is closed (see Release): no pod
	// joins it again. emptied counts the times its last pod left.
	closed  bool
	emptied int
	// keeper is the state of its keeper task.
	keeper keeperState
	// ready is closed when the start of the keeper in flight ends;
	// startErr is its error. Both are replaced by each start.
	ready    chan struct{}
	startErr error
	// tasks is held shared around container task creation and deletion,
	// and exclusively around keeper creation and deletion.
	tasks sync.RWMutex
}

// errClosed is a keeper start's error when its group closed first.
var errClosed = errors.New("shim group closed")

type keeperState int

const (
	keeperNone     keeperState = iota // not running, none starting
	keeperStarting                    // a start is in flight (ready is open)
	keeperRunning
)

// New returns Groups with no pods; call Restore with the recorded pods
// before serving.
func New(opts Options) *Groups {
	return &Groups{opts: opts, groups: map[string]*group{}, byPod: map[string]string{}, keepers: containerdKeepers{opts}}
}

// Enabled reports whether pods share shims.
func (g *Groups) Enabled() bool { return g.opts.PodsPerGroup > 1 }

// Restore records the groups of pods already recorded (pod ID to group,
// "" for a pod with its own shim); their keepers are started by Reconcile.
func (g *Groups) Restore(pods map[string]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for pod, id := range pods {
		g.byPod[pod] = id
		if id == "" {
			continue
		}
		gr := g.groups[id]
		if gr == nil {
			gr = &group{id: id, pods: map[string]bool{}}
			g.groups[id] = gr
		}
		gr.pods[pod] = true
	}
}

// Assign puts pod into a group with room (the fullest, so shims fill up)
// or a new one, starts the group's keeper in the background unless it
// runs or is starting, and returns the
// group's ID; "" when groups are off. Call Release if the pod is not
// recorded after all.
func (g *Groups) Assign(ctx context.Context, pod string) string {
	if !g.Enabled() {
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var best *group
	for _, gr := range g.groups {
		if gr.closed || len(gr.pods) >= g.opts.PodsPerGroup {
			continue
		}
		if best == nil || len(gr.pods) > len(best.pods) {
			best = gr
		}
	}
	if best == nil {
		best = &group{id: names.NewID()[:16], pods: map[string]bool{}}
		g.groups[best.id] = best
	}
	if best.keeper == keeperNone {
		// A new group, or one whose keeper start failed or died.
		g.startKeeperLocked(ctx, best)
	}
	best.pods[pod] = true
	g.byPod[pod] = best.id
	return best.id
}

// Release takes pod out of its group. When that was the group's last pod,
// the group is closed and its keeper deleted, so its shim exits: at once
// with no Options.IdleGrace, else after it unless a new pod joined the
// group meanwhile. The caller must have deleted every task of the pod.
func (g *Groups) Release(ctx context.Context, pod string) error {
	g.mu.Lock()
	id := g.byPod[pod]
	delete(g.byPod, pod)
	gr := g.groups[id]
	if gr == nil {
		g.mu.Unlock()
		return nil
	}
	delete(gr.pods, pod)
	if len(gr.pods) > 0 || gr.closed {
		g.mu.Unlock()
		return nil
	}
	gr.emptied++
	emptied := gr.emptied
	g.mu.Unlock()
	if g.opts.IdleGrace <= 0 {
		return g.closeIfEmpty(ctx, gr, emptied)
	}
	ctx = log.WithLogger(context.WithoutCancel(ctx), log.G(ctx).WithField("shimgroup", gr.id))
	time.AfterFunc(g.opts.IdleGrace, func() {
		if err := g.closeIfEmpty(ctx, gr, emptied); err != nil {
			log.G(ctx).WithError(err).Warn("closing an empty shim group (its keeper is deleted at the next start-up)")
		}
	})
	return nil
}

// CloseEmpty closes, at once, every group that has no pod (those waiting
// out their IdleGrace): for a slipwayd shutting down, which would leave
// their keepers running until its next start.
func (g *Groups) CloseEmpty(ctx context.Context) error {
	g.mu.Lock()
	var empty []*group
	emptied := map[*group]int{}
	for _, gr := range g.groups {
		if len(gr.pods) == 0 && !gr.closed {
			empty = append(empty, gr)
			emptied[gr] = gr.emptied
		}
	}
	g.mu.Unlock()
	var errs []error
	for _, gr := range empty {
		errs = append(errs, g.closeIfEmpty(ctx, gr, emptied[gr]))
	}
	return errors.Join(errs...)
}

// closeIfEmpty closes gr and deletes its keeper if it has had no pod
// since it emptied for the emptied-th time.
func (g *Groups) closeIfEmpty(ctx context.Context, gr *group, emptied int) error {
	g.mu.Lock()
	if gr.closed || len(gr.pods) > 0 || gr.emptied != emptied {
		g.mu.Unlock()
		return nil
	}
	gr.closed = true
	g.mu.Unlock()
	err := g.closeGroup(ctx, gr)
	g.mu.Lock()
	delete(g.groups, gr.id)
	g.mu.Unlock()
	return err
}

// closeGroup deletes closed group gr's keeper, after any start of it in
// flight.
func (g *Groups) closeGroup(ctx context.Context, gr *group) error {
	gr.tasks.Lock()
	defer gr.tasks.Unlock()
	g.mu.Lock()
	gr.keeper = keeperNone
	g.mu.Unlock()
	if err := g.keepers.remove(ctx, gr.id); err != nil {
		return fmt.Errorf("deleting the keeper of shim group %s: %w", gr.id, err)
	}
	return nil
}

// Sandbox is the containerd sandbox that the containers of pod name: its
// group keeper's (see containerdKeepers.recordSandbox); "" for a pod with
// its own shim.
func (g *Groups) Sandbox(pod string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if id := g.byPod[pod]; id != "" {
		return KeeperID(id)
	}
	return ""
}

// Enter is called before a task of a container of pod is created or
// deleted, and the returned release after. In a group it waits until the
// group's keeper runs (starting it if needed) and holds the group's lock
// shared; for a pod with its own shim it holds the pod's lock.
func (g *Groups) Enter(ctx context.Context, pod string) (release func(), err error) {
	g.mu.Lock()
	gr := g.groups[g.byPod[pod]]
	g.mu.Unlock()
	if gr == nil {
		return g.podLocks.Lock(ctx, pod)
	}
	for {
		if err := g.waitKeeper(ctx, gr); err != nil {
			return nil, err
		}
		gr.tasks.RLock()
		g.mu.Lock()
		running := gr.keeper == keeperRunning || gr.closed
		g.mu.Unlock()
		if running {
			return gr.tasks.RUnlock, nil
		}
		// The keeper died between the wait and the lock: wait again.
		gr.tasks.RUnlock()
	}
}

// waitKeeper returns once gr's keeper runs, starting it unless a start is
// in flight; it returns the start's error.
func (g *Groups) waitKeeper(ctx context.Context, gr *group) error {
	g.mu.Lock()
	if gr.closed || gr.keeper == keeperRunning {
		g.mu.Unlock()
		return nil
	}
	if gr.keeper == keeperNone {
		g.startKeeperLocked(ctx, gr)
	}
	ready := gr.ready
	g.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return gr.startErr
}

// startKeeperLocked starts gr's keeper in the background; g.mu is held.
func (g *Groups) startKeeperLocked(ctx context.Context, gr *group) {
	gr.keeper = keeperStarting
	ready := make(chan struct{})
	gr.ready = ready
	ctx = log.WithLogger(context.WithoutCancel(ctx), log.G(ctx).WithField("shimgroup", gr.id))
	go func() {
		exited, err := g.runKeeper(ctx, gr)
		// Right after a shim's death containerd may still hold the dead
		// keeper's task for a moment: try a few times before giving up.
		for backoff := 100 * time.Millisecond; err != nil && !errors.Is(err, errClosed) && backoff <= time.Second; backoff *= 2 {
			time.Sleep(backoff)
			exited, err = g.runKeeper(ctx, gr)
		}
		g.mu.Lock()
		gr.startErr = err
		switch {
		case gr.closed:
		case err != nil:
			gr.keeper = keeperNone
			log.G(ctx).WithError(err).Warn("starting the shim group's keeper (retried by the next task)")
		default:
			gr.keeper = keeperRunning
			go g.watchKeeper(ctx, gr, exited)
		}
		close(ready)
		g.mu.Unlock()
	}()
}

// runKeeper makes gr's keeper run, with gr's lock held exclusively: it
// adopts a running keeper (left by an earlier slipwayd) or deletes a dead
// one's task and starts a new one.
func (g *Groups) runKeeper(ctx context.Context, gr *group) (<-chan struct{}, error) {
	gr.tasks.Lock()
	defer gr.tasks.Unlock()
	g.mu.Lock()
	closed := gr.closed
	g.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	return g.keepers.ensure(ctx, gr.id)
}

// watchKeeper waits for gr's keeper to exit, then starts a new one unless
// the group closed meanwhile.
func (g *Groups) watchKeeper(ctx context.Context, gr *group, exited <-chan struct{}) {
	<-exited
	g.mu.Lock()
	defer g.mu.Unlock()
	if gr.closed || gr.keeper != keeperRunning {
		return
	}
	log.G(ctx).Warn("the shim group's keeper exited (its shim died?); starting a new one")
	g.startKeeperLocked(ctx, gr)
}
