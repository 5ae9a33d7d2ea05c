package cri

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	"github.com/slipway-dev/slipway/runtime/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStats reports a running container's CPU and memory (from its
// cgroup) and its writable layer's disk use.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if req.GetContainerId() == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.opts.ContainerStore.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	stats, err := s.containerStats(ctx, c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: stats}, nil
}

// ListContainerStats reports ContainerStats for the running containers that
// match the filter; one whose stats cannot be read is logged and left out.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	var out []*runtimeapi.ContainerStats
	for _, c := range s.opts.ContainerStore.List() {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING || !containerMatches(c, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
			continue
		}
		stats, err := s.containerStats(ctx, c)
		if err != nil {
			log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("container stats unavailable")
			continue
		}
		out = append(out, stats)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func (s *Server) containerStats(ctx context.Context, c container.Container) (*runtimeapi.ContainerStats, error) {
	stats := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.ID, Metadata: c.Config.GetMetadata(),
			Labels: c.Config.GetLabels(), Annotations: c.Config.GetAnnotations(),
		},
	}
	if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING && c.CgroupsPath != "" {
		cg, err := cgroupstats.ReadUsage(c.CgroupsPath, s.opts.CgroupDriver == "systemd")
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID, err)
		}
		stats.Cpu, stats.Memory = cpuUsage(cg), memoryUsage(cg)
	}
	bytes, inodes, err := s.opts.Containers.Usage(ctx, c.ID)
	if err == nil {
		stats.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  time.Now().UnixNano(),
			UsedBytes:  &runtimeapi.UInt64Value{Value: uint64(bytes)},
			InodesUsed: &runtimeapi.UInt64Value{Value: uint64(inodes)},
		}
	}
	return stats, nil
}
