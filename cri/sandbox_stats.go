package cri

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStats reports the pod cgroup's CPU and memory (when the pod has
// a cgroup parent), its network namespace's interface counters and the
// ContainerStats of its running containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	p, err := s.opts.Pods.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	stats, err := s.podStats(ctx, &p, s.runningByPod(p.ID)[p.ID], s.measureLayer)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: stats}, nil
}

// ListPodSandboxStats reports PodSandboxStats for the ready pods that match
// the filter. A pod whose stats cannot be read is logged and left out. The
// containers' writable layers are served as ListContainerStats serves them.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	filter := &runtimeapi.PodSandboxFilter{Id: f.GetId(), LabelSelector: f.GetLabelSelector()}
	var out []*runtimeapi.PodSandboxStats
	running := s.runningByPod("")
	for _, p := range s.podView() {
		if p.State != runtimeapi.PodSandboxState_SANDBOX_READY || !podMatches(p, filter) {
			continue
		}
		stats, err := s.podStats(ctx, p, running[p.ID], s.cachedLayer)
		if err != nil {
			log.G(ctx).WithError(err).WithField("podsandboxid", p.ID).Debug("pod stats unavailable")
			continue
		}
		out = append(out, stats)
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// runningByPod maps each pod (podID's, or every pod's for "") to its
// running containers, oldest first.
func (s *Server) runningByPod(podID string) map[string][]*container.Container {
	byPod := map[string][]*container.Container{}
	for _, c := range s.containerView() {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING && (podID == "" || c.PodID == podID) {
			byPod[c.PodID] = append(byPod[c.PodID], c)
		}
	}
	return byPod
}

// podStats reads p's cgroup and network namespace (through the /proc of
// one of its running containers when it can) and the stats of running,
// its running containers (containerStats, with layer); a container whose
// stats cannot be read is logged and left out.
func (s *Server) podStats(ctx context.Context, p *pod.Sandbox, running []*container.Container, layer func(context.Context, string) (layerUsage, error)) (*runtimeapi.PodSandboxStats, error) {
	now := time.Now().UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{}
	if parent := p.Config.GetLinux().GetCgroupParent(); parent != "" && p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		cg, err := cgroupstats.ReadUsage(parent, s.opts.CgroupDriver == "systemd")
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", p.ID, err)
		}
		linux.Cpu, linux.Memory = cpuUsage(cg), memoryUsage(cg)
	}
	if netns := p.Namespaces[namespaces.Net]; netns != "" && p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		var pid uint32
		for _, c := range running {
			if c.Pid > 0 {
				pid = c.Pid
				break
			}
		}
		ifaces, err := podNetworkStats(netns, pid)
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", p.ID, err)
		}
		linux.Network = &runtimeapi.NetworkUsage{Timestamp: now}
		for _, i := range ifaces {
			usage := &runtimeapi.NetworkInterfaceUsage{
				Name:     i.Name,
				RxBytes:  &runtimeapi.UInt64Value{Value: i.RxBytes},
				RxErrors: &runtimeapi.UInt64Value{Value: i.RxErrors},
				TxBytes:  &runtimeapi.UInt64Value{Value: i.TxBytes},
				TxErrors: &runtimeapi.UInt64Value{Value: i.TxErrors},
			}
			if i.Name == cni.PodInterface {
				linux.Network.DefaultInterface = usage
			} else {
				linux.Network.Interfaces = append(linux.Network.Interfaces, usage)
			}
		}
	}
	if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		for _, c := range running {
			stats, err := s.containerStats(ctx, c, layer)
			if err != nil {
				log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("container stats unavailable")
				continue
			}
			linux.Containers = append(linux.Containers, stats)
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: p.ID, Metadata: p.Config.GetMetadata(),
			Labels: p.Config.GetLabels(), Annotations: p.Config.GetAnnotations(),
		},
		Linux: linux,
	}, nil
}

// podNetworkStats reads the counters of the network namespace pinned at
// netns through process pid when it is in it, else by entering it.
func podNetworkStats(netns string, pid uint32) ([]pod.InterfaceStats, error) {
	if pid > 0 {
		if ifaces, ok, err := pod.NetworkStatsVia(pid, netns); ok || err != nil {
			return ifaces, err
		}
	}
	return pod.NetworkStats(netns)
}
