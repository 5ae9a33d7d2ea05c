package nri

import (
	"context"
	"fmt"

	"github.com/containerd/log"
	"github.com/containerd/nri/pkg/api"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ pod.Hooks = (*Host)(nil)

// RunPodSandbox tells plugins pod p is about to be ready. An error from a
// plugin fails the pod's creation; the plugins told are then told it
// stopped and was removed.
func (h *Host) RunPodSandbox(ctx context.Context, p pod.Sandbox) error {
	if !h.active() {
		return nil
	}
	nriPod := h.podToNRI(ctx, p)
	err := h.nri.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: nriPod})
	if err == nil {
		return nil
	}
	undo := context.WithoutCancel(ctx)
	if err := h.nri.StopPodSandbox(undo, &api.StopPodSandboxRequest{Pod: nriPod}); err != nil {
		log.G(ctx).WithError(err).Warn("nri: undoing RunPodSandbox (stop)")
	}
	if err := h.nri.RemovePodSandbox(undo, &api.RemovePodSandboxRequest{Pod: nriPod}); err != nil {
		log.G(ctx).WithError(err).Warn("nri: undoing RunPodSandbox (remove)")
	}
	return fmt.Errorf("nri plugin refused the pod: %w", err)
}

// StopPodSandbox tells plugins pod p stopped, once per pod: its workload
// containers are stopped and its sandbox still stands. A plugin's error is
// logged; a pod stops whatever plugins say.
func (h *Host) StopPodSandbox(ctx context.Context, p pod.Sandbox) {
	h.mu.Lock()
	told := h.podsStopped[p.ID]
	h.podsStopped[p.ID] = true
	h.mu.Unlock()
	if told || !h.active() {
		return
	}
	if err := h.nri.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: h.podToNRI(ctx, p)}); err != nil {
		log.G(ctx).WithError(err).Warn("nri: a plugin failed StopPodSandbox")
	}
}

// RemovePodSandbox tells plugins pod p is removed. Errors are logged.
func (h *Host) RemovePodSandbox(ctx context.Context, p pod.Sandbox) {
	h.mu.Lock()
	delete(h.podsStopped, p.ID)
	h.mu.Unlock()
	if !h.active() {
		return
	}
	if err := h.nri.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: h.podToNRI(ctx, p)}); err != nil {
		log.G(ctx).WithError(err).Warn("nri: a plugin failed RemovePodSandbox")
	}
}

// UpdatePodSandbox asks plugins about pod p's new overhead and resources;
// an error fails the update.
func (h *Host) UpdatePodSandbox(ctx context.Context, p pod.Sandbox, overhead, resources *runtimeapi.LinuxContainerResources) error {
	if !h.active() {
		return nil
	}
	req := &api.UpdatePodSandboxRequest{Pod: h.podToNRI(ctx, p)}
	if overhead != nil {
		req.OverheadLinuxResources = fromCRIResources(overhead)
	}
	if resources != nil {
		req.LinuxResources = fromCRIResources(resources)
	}
	if _, err := h.nri.UpdatePodSandbox(ctx, req); err != nil {
		return fmt.Errorf("nri plugin refused the pod update: %w", err)
	}
	return nil
}

// PostUpdatePodSandbox tells plugins pod p's update is done. Errors are
// logged.
func (h *Host) PostUpdatePodSandbox(ctx context.Context, p pod.Sandbox) {
	if !h.active() {
		return
	}
	if err := h.nri.PostUpdatePodSandbox(ctx, &api.PostUpdatePodSandboxRequest{Pod: h.podToNRI(ctx, p)}); err != nil {
		log.G(ctx).WithError(err).Warn("nri: a plugin failed PostUpdatePodSandbox")
	}
}

// nsNames are NRI's names of the namespaces a pod pins.
var nsNames = map[namespaces.Kind]string{namespaces.Net: "network", namespaces.IPC: "ipc", namespaces.UTS: "uts", namespaces.User: "user"}

// podToNRI is pod p as NRI describes it.
func (h *Host) podToNRI(ctx context.Context, p pod.Sandbox) *api.PodSandbox {
	md := p.Config.GetMetadata()
	linux := &api.LinuxPodSandbox{CgroupParent: p.Config.GetLinux().GetCgroupParent()}
	if res := p.Config.GetLinux().GetResources(); res != nil {
		linux.PodResources = fromCRIResources(res)
	}
	for kind, path := range p.Namespaces {
		if name, ok := nsNames[kind]; ok {
			linux.Namespaces = append(linux.Namespaces, &api.LinuxNamespace{Type: name, Path: path})
		}
	}
	out := &api.PodSandbox{
		Id:             p.ID,
		Name:           md.GetName(),
		Uid:            md.GetUid(),
		Namespace:      md.GetNamespace(),
		Labels:         p.Config.GetLabels(),
		Annotations:    p.Config.GetAnnotations(),
		RuntimeHandler: p.RuntimeHandler,
		Linux:          linux,
		Ips:            p.IPs,
	}
	if p.Infra {
		if pid, err := h.opts.InfraPid(ctx, p.ID); err == nil {
			out.Pid = pid
		}
	}
	return out
}
