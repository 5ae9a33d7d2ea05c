package nri

import (
	"context"
	"fmt"

	"github.com/containerd/log"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/spec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ container.Hooks = (*Host)(nil)

// CreateContainer asks plugins about container c, to be created with
// spec, and applies their adjustment to spec. A plugin's error fails the
// creation.
func (h *Host) CreateContainer(ctx context.Context, c container.Container, s *specs.Spec) error {
	if !h.active() {
		return nil
	}
	p, err := h.opts.Pods.Get(c.PodID)
	if err != nil {
		return err
	}
	rpl, err := h.nri.CreateContainer(ctx, &api.CreateContainerRequest{
		Pod:       h.podToNRI(ctx, p),
		Container: h.containerToNRI(ctx, c, s),
	})
	if err != nil {
		return fmt.Errorf("nri plugin refused the container: %w", err)
	}
	if err := Adjust(ctx, s, rpl.GetAdjust(), h.opts.CDI); err != nil {
		return fmt.Errorf("applying nri plugins' adjustment: %w", err)
	}
	h.applyLater(rpl.GetUpdate(), rpl.GetEvict())
	return nil
}

// StartContainer tells plugins container c is about to start; an error
// fails the start.
func (h *Host) StartContainer(ctx context.Context, c container.Container) error {
	if !h.active() {
		return nil
	}
	pod, ctr := h.pair(ctx, c)
	if err := h.nri.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("nri plugin refused the start: %w", err)
	}
	return nil
}

// UpdateContainer asks plugins about new resources res of container c and
// returns the resources to apply.
func (h *Host) UpdateContainer(ctx context.Context, c container.Container, res *specs.LinuxResources) (*specs.LinuxResources, error) {
	if !h.active() {
		return res, nil
	}
	pod, ctr := h.pair(ctx, c)
	rpl, err := h.nri.UpdateContainer(ctx, &api.UpdateContainerRequest{
		Pod: pod, Container: ctr, LinuxResources: api.FromOCILinuxResources(res, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("nri plugin refused the update: %w", err)
	}
	updates := rpl.GetUpdate()
	// The library answers the requested container's own update last.
	if n := len(updates); n > 0 && updates[n-1].GetContainerId() == c.ID {
		if r := updates[n-1].GetLinux().GetResources(); r != nil {
			res = r.ToOCI()
		}
		updates = updates[:n-1]
	}
	h.applyLater(updates, rpl.GetEvict())
	return res, nil
}

// Notify tells plugins of event e of container c. Errors are logged.
func (h *Host) Notify(ctx context.Context, e container.HookEvent, c container.Container) {
	if !h.active() {
		return
	}
	pod, ctr := h.pair(ctx, c)
	var err error
	switch e {
	case container.PostCreate:
		err = h.nri.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr})
	case container.PostStart:
		err = h.nri.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr})
	case container.PostUpdate:
		err = h.nri.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr})
	case container.Stopped:
		var rpl *api.StopContainerResponse
		if rpl, err = h.nri.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr}); err == nil {
			h.applyLater(rpl.GetUpdate(), nil)
		}
	case container.Removed:
		err = h.nri.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr})
	}
	if err != nil {
		log.G(ctx).WithError(err).WithField("containerid", c.ID).Warnf("nri: a plugin failed %s", e)
	}
}

// pair is container c and its pod as NRI describes them; a pod removed
// meanwhile is described by its ID.
func (h *Host) pair(ctx context.Context, c container.Container) (*api.PodSandbox, *api.Container) {
	nriPod := &api.PodSandbox{Id: c.PodID}
	if p, err := h.opts.Pods.Get(c.PodID); err == nil {
		nriPod = h.podToNRI(ctx, p)
	}
	return nriPod, h.containerToNRI(ctx, c, nil)
}

// containerStates maps CRI states to NRI's.
var containerStates = map[runtimeapi.ContainerState]api.ContainerState{
	runtimeapi.ContainerState_CONTAINER_CREATED: api.ContainerState_CONTAINER_CREATED,
	runtimeapi.ContainerState_CONTAINER_RUNNING: api.ContainerState_CONTAINER_RUNNING,
	runtimeapi.ContainerState_CONTAINER_EXITED:  api.ContainerState_CONTAINER_STOPPED,
}

// containerToNRI is container c as NRI describes it, with what its spec
// says (s, or the stored spec when s is nil).
func (h *Host) containerToNRI(ctx context.Context, c container.Container, s *specs.Spec) *api.Container {
	out := &api.Container{
		Id:            c.ID,
		PodSandboxId:  c.PodID,
		Name:          c.Config.GetMetadata().GetName(),
		State:         containerStates[c.State],
		Labels:        c.Config.GetLabels(),
		Annotations:   c.Config.GetAnnotations(),
		Pid:           c.Pid,
		CreatedAt:     c.CreatedAt.UnixNano(),
		ExitCode:      c.ExitCode,
		StatusReason:  c.Reason,
		StatusMessage: c.Message,
		Image:         &api.Image{Name: c.Image},
		User:          &api.User{Uid: c.User.UID, Gid: c.User.GID, AdditionalGids: c.User.Groups},
	}
	if !c.StartedAt.IsZero() {
		out.StartedAt = c.StartedAt.UnixNano()
	}
	if !c.FinishedAt.IsZero() {
		out.FinishedAt = c.FinishedAt.UnixNano()
	}
	if s == nil {
		var err error
		if s, err = h.opts.Spec(ctx, c.ID); err != nil {
			log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("nri: describing a container without its spec")
			return out
		}
	}
	if s.Annotations != nil {
		out.Annotations = s.Annotations
	}
	out.Mounts = api.FromOCIMounts(s.Mounts)
	out.Hooks = api.FromOCIHooks(s.Hooks)
	if p := s.Process; p != nil {
		out.Args, out.Env = p.Args, p.Env
		for _, r := range p.Rlimits {
			out.Rlimits = append(out.Rlimits, &api.POSIXRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
		}
	}
	if l := s.Linux; l != nil {
		out.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, nil),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      l.Sysctl,
		}
		if s.Process != nil && s.Process.OOMScoreAdj != nil {
			out.Linux.OomScoreAdj = api.Int(*s.Process.OOMScoreAdj)
		}
	}
	return out
}

// fromCRIResources is a pod's CRI resources as NRI describes them; nil
// when they do not translate.
func fromCRIResources(r *runtimeapi.LinuxContainerResources) *api.LinuxResources {
	res, err := spec.ResourcesUpdate(r)
	if err != nil {
		return nil
	}
	return api.FromOCILinuxResources(res, nil)
}
