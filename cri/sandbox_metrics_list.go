package cri

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/containerd/log"
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	"github.com/slipway-dev/slipway/runtime/container"
	"github.com/slipway-dev/slipway/runtime/images"
	"github.com/slipway-dev/slipway/runtime/namespaces"
	"github.com/slipway-dev/slipway/runtime/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandboxMetrics reports, for every ready pod, its network counters
// by interface and, for each of its running containers, the metrics
// ListMetricDescriptors describes: read from the same cgroup, network and
// snapshot readers as the stats RPCs. What cannot be read for one pod or
// container is logged and left out.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	now := time.Now()
	var capacity *images.Capacity
	if s.opts.FsCapacity != nil {
		c, err := s.opts.FsCapacity.Capacity(ctx)
		if err != nil {
			log.G(ctx).WithError(err).Debug("filesystem capacity unavailable")
		} else {
			capacity = &c
		}
	}
	running := map[string][]container.Container{}
	for _, c := range s.opts.ContainerStore.List() {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING && c.CgroupsPath != "" {
			running[c.PodID] = append(running[c.PodID], c)
		}
	}
	var out []*runtimeapi.PodSandboxMetrics
	for _, p := range s.opts.Pods.List() {
		if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.ID}
		meta := p.Config.GetMetadata()
		if netns := p.Namespaces[namespaces.Net]; netns != "" {
			var pid uint32
			if len(running[p.ID]) > 0 {
				pid = running[p.ID][0].Pid
			}
			ifaces, err := podNetworkStats(netns, pid)
			if err != nil {
				log.G(ctx).WithError(err).WithField("podsandboxid", p.ID).Debug("pod network metrics unavailable")
			} else {
				m := metricSet{ts: now.UnixNano(), labels: []string{meta.GetName(), meta.GetNamespace(), "", p.ID, ""}}
				m.network(ifaces)
				pm.Metrics = m.out
			}
		}
		for _, c := range running[p.ID] {
			cm, err := s.containerMetrics(ctx, c, meta, capacity, now)
			if err != nil {
				log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("container metrics unavailable")
				continue
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
		}
		out = append(out, pm)
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// containerSample is everything a running container's metrics are made of.
type containerSample struct {
	container container.Container
	cgroup    cgroupstats.Stats
	// procs is nil when the processes could not be listed.
	procs *cgroupstats.Processes
	// layerBytes is the writable layer's usage, or -1 when unknown;
	// capacity, when not nil, the filesystem holding it.
	layerBytes int64
	capacity   *images.Capacity
}

func (s *Server) containerMetrics(ctx context.Context, c container.Container, meta *runtimeapi.PodSandboxMetadata, capacity *images.Capacity, now time.Time) (*runtimeapi.ContainerMetrics, error) {
	systemd := s.opts.CgroupDriver == "systemd"
	cg, err := cgroupstats.Read(c.CgroupsPath, systemd)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	sample := containerSample{container: c, cgroup: cg, layerBytes: -1, capacity: capacity}
	if procs, err := cgroupstats.ReadProcesses(c.CgroupsPath, systemd); err != nil {
		log.G(ctx).WithError(err).WithField("containerid", c.ID).Debug("container process metrics unavailable")
	} else {
		sample.procs = &procs
	}
	if bytes, _, err := s.opts.Containers.Usage(ctx, c.ID); err == nil {
		sample.layerBytes = bytes
	}
	m := metricSet{ts: now.UnixNano(), labels: []string{meta.GetName(), meta.GetNamespace(), c.Config.GetMetadata().GetName(), c.ID, c.Image}}
	m.container(sample, now)
	return &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: m.out}, nil
}

// metricSet collects metrics that share a timestamp and base label values.
type metricSet struct {
	ts     int64
	labels []string
	out    []*runtimeapi.Metric
}

// add appends d's value v; extra are the values of d's extra label keys.
func (m *metricSet) add(d *metricDesc, v uint64, extra ...string) {
	m.out = append(m.out, &runtimeapi.Metric{
		Name:        d.name,
		Timestamp:   m.ts,
		MetricType:  d.typ,
		LabelValues: append(append([]string(nil), m.labels...), extra...),
		Value:       &runtimeapi.UInt64Value{Value: v},
	})
}

func seconds(nanos uint64) uint64 { return nanos / uint64(time.Second) }

// container adds the metrics of one running container.
func (m *metricSet) container(s containerSample, now time.Time) {
	cg := s.cgroup
	m.add(mCPUUsage, seconds(cg.CPUUsageNanos))
	m.add(mCPUUser, seconds(cg.CPUUserNanos))
	m.add(mCPUSystem, seconds(cg.CPUSystemNanos))
	m.add(mCFSPeriods, cg.CFSPeriods)
	m.add(mCFSThrottled, cg.CFSThrottledPeriods)
	m.add(mCFSThrottledSecs, seconds(cg.CFSThrottledNanos))

	m.add(mMemCache, cg.MemoryCacheBytes)
	m.add(mMemRSS, cg.MemoryRSSBytes)
	m.add(mMemKernel, cg.MemoryKernelBytes)
	m.add(mMemMapped, cg.MemoryMappedFileBytes)
	m.add(mMemSwap, cg.MemorySwapBytes)
	m.add(mMemFailcnt, cg.MemoryFailcnt)
	m.add(mMemUsage, cg.MemoryUsageBytes)
	m.add(mMemMaxUsage, cg.MemoryMaxUsageBytes)
	m.add(mMemWorkingSet, cg.MemoryWorkingSetBytes)
	m.add(mMemFailures, cg.PageFaults, "pgfault", "container")
	m.add(mMemFailures, cg.MajorPageFaults, "pgmajfault", "container")
	m.add(mOOMEvents, cg.OOMKills)

	m.add(mThreads, cg.Tasks)
	m.add(mThreadsMax, cg.TasksMax)
	if p := s.procs; p != nil {
		m.add(mProcesses, p.Processes)
		m.add(mFileDescriptors, p.FileDescriptors)
		m.add(mSockets, p.Sockets)
	}

	for _, io := range cg.IO {
		dev := fmt.Sprintf("%d:%d", io.Major, io.Minor)
		major, minor := strconv.FormatUint(io.Major, 10), strconv.FormatUint(io.Minor, 10)
		m.add(mFsReadsBytes, io.ReadBytes, dev)
		m.add(mFsReads, io.Reads, dev)
		m.add(mFsWritesBytes, io.WriteBytes, dev)
		m.add(mFsWrites, io.Writes, dev)
		m.add(mBlkioDeviceUsage, io.ReadBytes, dev, major, minor, "Read")
		m.add(mBlkioDeviceUsage, io.WriteBytes, dev, major, minor, "Write")
	}

	if s.capacity != nil {
		dev := s.capacity.Mountpoint
		if s.layerBytes >= 0 {
			m.add(mFsUsage, uint64(s.layerBytes), dev)
		}
		m.add(mFsLimit, s.capacity.Bytes, dev)
		m.add(mFsInodesTotal, s.capacity.InodesTotal, dev)
		m.add(mFsInodesFree, s.capacity.InodesFree, dev)
	}

	c := s.container
	m.add(mLastSeen, uint64(now.Unix()))
	m.add(mStartTime, uint64(c.StartedAt.Unix()))
	r := c.Resources
	period, shares := uint64(r.GetCpuPeriod()), uint64(r.GetCpuShares())
	if period == 0 {
		period = 100000 // the kernel's default CFS period
	}
	if shares == 0 {
		shares = 1024 // the kernel's default weight
	}
	m.add(mSpecCPUPeriod, period)
	m.add(mSpecCPUShares, shares)
	m.add(mSpecMemLimit, uint64(max(r.GetMemoryLimitInBytes(), 0)))
	m.add(mSpecMemSwapLimit, uint64(max(r.GetMemorySwapLimitInBytes(), 0)))
}

// network adds a pod's per-interface counters.
func (m *metricSet) network(ifaces []pod.InterfaceStats) {
	for _, i := range ifaces {
		m.add(mNetRxBytes, i.RxBytes, i.Name)
		m.add(mNetRxPackets, i.RxPackets, i.Name)
		m.add(mNetRxDropped, i.RxDropped, i.Name)
		m.add(mNetRxErrors, i.RxErrors, i.Name)
		m.add(mNetTxBytes, i.TxBytes, i.Name)
		m.add(mNetTxPackets, i.TxPackets, i.Name)
		m.add(mNetTxDropped, i.TxDropped, i.Name)
		m.add(mNetTxErrors, i.TxErrors, i.Name)
	}
}
