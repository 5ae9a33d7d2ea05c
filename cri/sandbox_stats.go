package cri

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStats reports the pod cgroup's CPU and memory (when the pod has
// a cgroup parent) and its network namespace's interface counters.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	p, err := s.opts.Pods.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	stats, err := s.podStats(&p)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: stats}, nil
}

// ListPodSandboxStats reports PodSandboxStats for the ready pods that match
// the filter. A pod whose stats cannot be read is logged and left out.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	filter := &runtimeapi.PodSandboxFilter{Id: f.GetId(), LabelSelector: f.GetLabelSelector()}
	var out []*runtimeapi.PodSandboxStats
	for _, p := range s.podView() {
		if p.State != runtimeapi.PodSandboxState_SANDBOX_READY || !podMatches(p, filter) {
			continue
		}
		stats, err := s.podStats(p)
		if err != nil {
			log.G(ctx).WithError(err).WithField("podsandboxid", p.ID).Debug("pod stats unavailable")
			continue
		}
		out = append(out, stats)
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

func (s *Server) podStats(p *pod.Sandbox) (*runtimeapi.PodSandboxStats, error) {
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
		ifaces, err := pod.NetworkStats(netns)
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
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: p.ID, Metadata: p.Config.GetMetadata(),
			Labels: p.Config.GetLabels(), Annotations: p.Config.GetAnnotations(),
		},
		Linux: linux,
	}, nil
}
