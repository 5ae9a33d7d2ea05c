package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// soakCallTimeout bounds every call of the soak: a call that takes longer
// hangs, and counts as an unexpected DeadlineExceeded.
const soakCallTimeout = 90 * time.Second

// Limits that keep the world at a steady size on a small machine.
const (
	soakMaxPods          = 12
	soakMaxContainersPod = 3
	soakPortsPerWorker   = 4
)

// soakWorker is one of the soak's concurrent clients. Its rng is its own,
// seeded from the run's seed and its number.
type soakWorker struct {
	n      int
	rng    *rand.Rand
	world  *soakWorld
	tally  *soakTally
	images []soakImage
	// ports are every worker's free host ports on 127.0.0.1, by worker: a
	// pod's port goes back to its maker's pool whoever removes the pod.
	ports []chan int32
	// logRoot holds the pods' log directories; cgroupParent is the parent
	// some pods get (the others use the runtime's default).
	logRoot, cgroupParent string
}

// soakOp is one kind of step; weight is its share of the mix.
type soakOp struct {
	weight int
	run    func(*soakWorker, context.Context)
}

var soakMix = []soakOp{
	{8, (*soakWorker).runPod},
	{12, (*soakWorker).createContainer},
	{10, (*soakWorker).startContainer},
	{12, (*soakWorker).execSync},
	{6, (*soakWorker).updateResources},
	{5, (*soakWorker).stopContainer},
	{5, (*soakWorker).removeContainer},
	{3, (*soakWorker).stopPod},
	{4, (*soakWorker).removePod},
	{6, (*soakWorker).containerStatus},
	{3, (*soakWorker).podStatus},
	{3, (*soakWorker).listContainers},
	{3, (*soakWorker).listPods},
	{3, (*soakWorker).pullImage},
	{2, (*soakWorker).removeImage},
}

// loop runs random steps until the deadline passes or ctx ends; the step
// under way at the deadline runs to its end.
func (w *soakWorker) loop(ctx context.Context, deadline time.Time) {
	total := 0
	for _, op := range soakMix {
		total += op.weight
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		pick := w.rng.IntN(total)
		for _, op := range soakMix {
			if pick -= op.weight; pick < 0 {
				op.run(w, ctx)
				break
			}
		}
	}
}

// call runs f with the soak's call timeout.
func call[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, soakCallTimeout)
	defer cancel()
	return f(ctx)
}

func (w *soakWorker) runPod(ctx context.Context) {
	if w.world.podCount() >= soakMaxPods {
		return
	}
	config := podConfig(fmt.Sprintf("soak-w%d", w.n))
	config.LogDirectory = filepath.Join(w.logRoot, config.Metadata.Name)
	if err := os.MkdirAll(config.LogDirectory, 0o755); err != nil {
		w.tally.violate("making log directory: %v", err)
		return
	}
	if w.rng.IntN(3) == 0 {
		config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	}
	if w.rng.IntN(3) == 0 {
		config.Linux.CgroupParent = w.cgroupParent
	}
	var port int32
	if w.rng.IntN(2) == 0 {
		select {
		case port = <-w.ports[w.n]:
			config.PortMappings = []*runtimeapi.PortMapping{{
				Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: port, HostIp: "127.0.0.1",
			}}
		default:
		}
	}
	resp, err := call(ctx, func(ctx context.Context) (*runtimeapi.RunPodSandboxResponse, error) {
		return runtimeSvc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config})
	})
	w.tally.record("RunPodSandbox", err, false, config.Metadata.Name)
	if err != nil {
		if port != 0 {
			w.ports[w.n] <- port
		}
		return
	}
	w.world.addPod(&soakPod{id: resp.PodSandboxId, config: config, port: port, worker: w.n})
}

func (w *soakWorker) createContainer(ctx context.Context) {
	var name string
	p := w.world.pickPod(w.rng, func(p *soakPod) bool {
		if p.stopping || p.removing || p.containers >= soakMaxContainersPod {
			return false
		}
		p.containers++
		name = fmt.Sprintf("c%d", p.containers)
		p.inflight.Add(1)
		return true
	})
	if p == nil {
		return
	}
	defer p.inflight.Done()
	img := w.images[w.rng.IntN(len(w.images))]
	ended := img.group.ended.Load()
	if !w.ensureImage(ctx, img) {
		return
	}
	config := containerConfig(name, sleeperScript)
	config.Image.Image = img.ref
	if w.rng.IntN(2) == 0 {
		config.Linux.Resources = w.resources()
	}
	resp, err := call(ctx, func(ctx context.Context) (*runtimeapi.CreateContainerResponse, error) {
		return runtimeSvc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: p.id, Config: config, SandboxConfig: p.config,
		})
	})
	code := status.Code(err)
	tolerated := code == codes.NotFound && (p.gone() || img.group.removedSince(ended)) ||
		code == codes.FailedPrecondition && p.halted()
	w.tally.record("CreateContainer", err, tolerated, fmt.Sprintf("%s %s (removals ended before %d, begun now %d)", p, img.ref, ended, img.group.begun.Load()))
	if err != nil {
		return
	}
	w.world.addContainer(&soakContainer{id: resp.ContainerId, pod: p, image: img})
}

// ensureImage pulls img unless the node has it, as kubelet's IfNotPresent
// policy does, and reports whether it is there.
func (w *soakWorker) ensureImage(ctx context.Context, img soakImage) bool {
	st, err := call(ctx, func(ctx context.Context) (*runtimeapi.ImageStatusResponse, error) {
		return imageSvc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: img.ref}})
	})
	w.tally.record("ImageStatus", err, false, img.ref)
	if err != nil {
		return false
	}
	if st.Image != nil {
		return true
	}
	return w.pull(ctx, img)
}

func (w *soakWorker) pull(ctx context.Context, img soakImage) bool {
	resp, err := call(ctx, func(ctx context.Context) (*runtimeapi.PullImageResponse, error) {
		return imageSvc.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: img.ref}})
	})
	w.tally.record("PullImage", err, false, img.ref)
	if err == nil && resp.ImageRef == "" {
		w.tally.violate("PullImage %s returned no image ref", img.ref)
	}
	return err == nil
}

// resources are random CPU and memory limits, far above what a sleeping
// shell uses.
func (w *soakWorker) resources() *runtimeapi.LinuxContainerResources {
	return &runtimeapi.LinuxContainerResources{
		CpuShares:          int64(2 + w.rng.IntN(1023)),
		CpuPeriod:          100000,
		CpuQuota:           int64(10000 + w.rng.IntN(190000)),
		MemoryLimitInBytes: int64(64+w.rng.IntN(192)) << 20,
	}
}

func (w *soakWorker) startContainer(ctx context.Context) {
	c := w.world.pickContainer(w.rng, func(c *soakContainer) bool {
		if c.state != ctrCreated || c.stopping || c.removing {
			return false
		}
		c.pod.mu.Lock()
		defer c.pod.mu.Unlock()
		if c.pod.stopping || c.pod.removing {
			return false
		}
		c.state = ctrStarting
		c.pod.inflight.Add(1)
		return true
	})
	if c == nil {
		return
	}
	defer c.pod.inflight.Done()
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.StartContainerResponse, error) {
		return runtimeSvc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.id})
	})
	code := status.Code(err)
	tolerated := code == codes.NotFound && c.gone() || code == codes.FailedPrecondition && c.halted()
	w.tally.record("StartContainer", err, tolerated, c.String())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = ctrRunning
	if err != nil {
		c.state = ctrFailed
	}
}

func (w *soakWorker) execSync(ctx context.Context) {
	c := w.world.pickContainer(w.rng, func(c *soakContainer) bool {
		return c.state == ctrRunning && !c.stopping && !c.removing
	})
	if c == nil {
		return
	}
	token := fmt.Sprintf("soak-%d-%d", w.n, w.rng.Uint32())
	resp, err := call(ctx, func(ctx context.Context) (*runtimeapi.ExecSyncResponse, error) {
		return runtimeSvc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: c.id, Cmd: []string{"echo", token}, Timeout: 30})
	})
	// An exec that races a stop fails as the container dies: the runtime
	// (containerd's CRI as well) may answer with the shim's NotFound for
	// a deleted task or Unknown with runc's error.
	code := status.Code(err)
	tolerated := code == codes.NotFound && c.gone() ||
		(code == codes.FailedPrecondition || code == codes.NotFound || code == codes.Unknown) && c.halted()
	w.tally.record("ExecSync", err, tolerated, c.String())
	if err == nil && (resp.ExitCode != 0 || string(resp.Stdout) != token+"\n") && !c.halted() {
		w.tally.violate("ExecSync in %s: exit %d, stdout %q, stderr %q; want exit 0 and %q",
			c.id, resp.ExitCode, resp.Stdout, resp.Stderr, token+"\n")
	}
}

func (w *soakWorker) updateResources(ctx context.Context) {
	c := w.world.pickContainer(w.rng, func(c *soakContainer) bool {
		return (c.state == ctrCreated || c.state == ctrRunning) && !c.removing
	})
	if c == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.UpdateContainerResourcesResponse, error) {
		return runtimeSvc.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: c.id, Linux: w.resources(),
		})
	})
	w.tally.record("UpdateContainerResources", err, status.Code(err) == codes.NotFound && c.gone(), c.String())
}

func (w *soakWorker) stopContainer(ctx context.Context) {
	var wasRunning bool
	c := w.world.pickContainer(w.rng, func(c *soakContainer) bool {
		if c.removing {
			return false
		}
		c.stopping, wasRunning = true, c.state == ctrRunning
		return true
	})
	if c == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.StopContainerResponse, error) {
		return runtimeSvc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.id, Timeout: 10})
	})
	w.tally.record("StopContainer", err, status.Code(err) == codes.NotFound && c.gone(), c.String())
	if err != nil || !wasRunning {
		return
	}
	// A stop that returned leaves the container exited.
	st, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.id})
	switch {
	case status.Code(err) == codes.NotFound && c.gone():
	case err != nil:
		w.tally.violate("ContainerStatus of %s after StopContainer: %v", c.id, err)
	case st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED:
		w.tally.violate("container %s is %s after StopContainer returned", c.id, st.Status.State)
	}
}

func (w *soakWorker) removeContainer(ctx context.Context) {
	c := w.world.pickContainer(w.rng, func(c *soakContainer) bool {
		c.removing = true
		return true
	})
	if c == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.RemoveContainerResponse, error) {
		return runtimeSvc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.id})
	})
	w.tally.record("RemoveContainer", err, false, c.String())
	if err != nil {
		return
	}
	if _, err := runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.id}); status.Code(err) != codes.NotFound {
		w.tally.violate("ContainerStatus of %s after RemoveContainer returned: %v, want NotFound", c.id, err)
	}
	w.world.dropContainer(c)
}

func (w *soakWorker) stopPod(ctx context.Context) {
	p := w.world.pickPod(w.rng, func(p *soakPod) bool {
		p.stopping = true
		return true
	})
	if p == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.StopPodSandboxResponse, error) {
		return runtimeSvc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
	})
	w.tally.record("StopPodSandbox", err, false, p.String())
	if err != nil {
		return
	}
	// The creations and starts that raced the stop are over: none of the
	// pod's containers may run, and the pod is not ready.
	p.inflight.Wait()
	w.checkPodContainers(ctx, p, "StopPodSandbox", func(c *runtimeapi.Container) bool {
		return c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
	})
	st, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
	switch {
	case status.Code(err) == codes.NotFound && p.gone():
	case err != nil:
		w.tally.violate("PodSandboxStatus of %s after StopPodSandbox: %v", p.id, err)
	case st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY:
		w.tally.violate("pod %s is %s after StopPodSandbox returned", p.id, st.Status.State)
	}
}

func (w *soakWorker) removePod(ctx context.Context) {
	p := w.world.pickPod(w.rng, func(p *soakPod) bool {
		p.removing = true
		return true
	})
	if p == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.RemovePodSandboxResponse, error) {
		return runtimeSvc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
	})
	w.tally.record("RemovePodSandbox", err, false, p.String())
	if err != nil {
		return
	}
	// The creations and starts that raced the removal are over: the pod
	// has no container left, and is gone.
	p.inflight.Wait()
	w.checkPodContainers(ctx, p, "RemovePodSandbox", func(*runtimeapi.Container) bool { return true })
	if _, err := runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id}); status.Code(err) != codes.NotFound {
		w.tally.violate("PodSandboxStatus of %s after RemovePodSandbox returned: %v, want NotFound", p.id, err)
	}
	if w.world.dropPod(p) && p.port != 0 {
		w.ports[p.worker] <- p.port
	}
}

// checkPodContainers records a violation for each container of p that
// bad picks after the call named after returned.
func (w *soakWorker) checkPodContainers(ctx context.Context, p *soakPod, after string, bad func(*runtimeapi.Container) bool) {
	resp, err := runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{PodSandboxId: p.id},
	})
	if err != nil {
		w.tally.violate("ListContainers of pod %s after %s: %v", p.id, after, err)
		return
	}
	for _, c := range resp.Containers {
		if bad(c) {
			w.tally.violate("pod %s has container %s (%s, %s) after %s returned", p.id, c.Id, c.Metadata.GetName(), c.State, after)
		}
	}
}

func (w *soakWorker) containerStatus(ctx context.Context) {
	c := w.world.pickContainer(w.rng, func(*soakContainer) bool { return true })
	if c == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.ContainerStatusResponse, error) {
		return runtimeSvc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.id, Verbose: w.rng.IntN(2) == 0})
	})
	w.tally.record("ContainerStatus", err, status.Code(err) == codes.NotFound && c.gone(), c.String())
}

func (w *soakWorker) podStatus(ctx context.Context) {
	p := w.world.pickPod(w.rng, func(*soakPod) bool { return true })
	if p == nil {
		return
	}
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.PodSandboxStatusResponse, error) {
		return runtimeSvc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id, Verbose: w.rng.IntN(2) == 0})
	})
	w.tally.record("PodSandboxStatus", err, status.Code(err) == codes.NotFound && p.gone(), p.String())
}

func (w *soakWorker) listContainers(ctx context.Context) {
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.ListContainersResponse, error) {
		return runtimeSvc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	})
	w.tally.record("ListContainers", err, false, "")
}

func (w *soakWorker) listPods(ctx context.Context) {
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.ListPodSandboxResponse, error) {
		return runtimeSvc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	})
	w.tally.record("ListPodSandbox", err, false, "")
}

func (w *soakWorker) pullImage(ctx context.Context) {
	w.pull(ctx, w.images[w.rng.IntN(len(w.images))])
}

// removeImage removes an image whether or not containers use it: as on
// containerd's CRI, they keep their rootfs and run on.
func (w *soakWorker) removeImage(ctx context.Context) {
	img := w.images[w.rng.IntN(len(w.images))]
	img.group.begun.Add(1)
	_, err := call(ctx, func(ctx context.Context) (*runtimeapi.RemoveImageResponse, error) {
		return imageSvc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: img.ref}})
	})
	img.group.ended.Add(1)
	w.tally.record("RemoveImage", err, false, img.ref)
}

// soakIDs sorts ids for comparison (nil for none).
func soakIDs(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	return ids
}
