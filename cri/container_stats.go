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
	stats, err := s.containerStats(ctx, &c, s.measureLayer)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: stats}, nil
}

// ListContainerStats reports ContainerStats for the running containers that
// match the filter; one whose stats cannot be read is logged and left out.
// CPU and memory are read in the call; the writable layer's usage may be
// up to a minute old (see layerUsageFresh; its timestamp says when it was
// measured).
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	var out []*runtimeapi.ContainerStats
	running := map[string]bool{}
	for _, c := range s.containerView() {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		running[c.ID] = true
		if !containerMatches(c, f.GetId(), f.GetPodSandboxId(), f.GetLabelSelector()) {
			continue
		}
		stats, err := s.containerStats(ctx, c, s.cachedLayer)
		if err != nil {
			log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("container stats unavailable")
			continue
		}
		out = append(out, stats)
	}
	s.layers.keep(running)
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

// cachedLayer is container id's writable-layer usage as the lists serve
// it (layerUsages).
func (s *Server) cachedLayer(ctx context.Context, id string) (layerUsage, error) {
	return s.layers.get(ctx, id, s.opts.Containers.Usage)
}

// measureLayer measures container id's writable layer now.
func (s *Server) measureLayer(ctx context.Context, id string) (layerUsage, error) {
	bytes, inodes, err := s.opts.Containers.Usage(ctx, id)
	return layerUsage{bytes: bytes, inodes: inodes, at: time.Now()}, err
}

// containerStats reads c's cgroup and gets its writable layer's usage
// from layer; a layer that cannot be measured is left out.
func (s *Server) containerStats(ctx context.Context, c *container.Container, layer func(context.Context, string) (layerUsage, error)) (*runtimeapi.ContainerStats, error) {
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
	if u, err := layer(ctx, c.ID); err == nil {
		stats.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  u.at.UnixNano(),
			UsedBytes:  &runtimeapi.UInt64Value{Value: uint64(u.bytes)},
			InodesUsed: &runtimeapi.UInt64Value{Value: uint64(u.inodes)},
		}
	}
	return stats, nil
}
