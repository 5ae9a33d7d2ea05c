package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListMetricDescriptors describes every metric ListPodSandboxMetrics
// reports: the container metrics kubelet used to take from cAdvisor, with
// the same names, and the label keys their values come with.
func (s *Server) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDescs))
	for _, d := range metricDescs {
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: d.labelKeys()})
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// metricBaseLabels label every metric: the pod's name and namespace, the
// container's name, ID (the pod's for pod-level metrics) and image.
var metricBaseLabels = []string{"pod", "namespace", "container", "id", "image"}

// metricDesc describes one metric; extra are its label keys after
// metricBaseLabels.
type metricDesc struct {
	name  string
	help  string
	typ   runtimeapi.MetricType
	extra []string
}

func (d *metricDesc) labelKeys() []string {
	return append(append([]string(nil), metricBaseLabels...), d.extra...)
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

var (
	ifaceLabel  = []string{"interface"}
	deviceLabel = []string{"device"}
)

// The metrics, by source. Seconds are whole seconds: a CRI metric's value
// is an integer.
var (
	// The container's cgroup (cgroupstats.Read).
	mCPUUsage         = &metricDesc{"container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", counter, nil}
	mCPUUser          = &metricDesc{"container_cpu_user_seconds_total", "Cumulative user CPU time consumed in seconds.", counter, nil}
	mCPUSystem        = &metricDesc{"container_cpu_system_seconds_total", "Cumulative system CPU time consumed in seconds.", counter, nil}
	mCFSPeriods       = &metricDesc{"container_cpu_cfs_periods_total", "Number of elapsed CFS enforcement period intervals.", counter, nil}
	mCFSThrottled     = &metricDesc{"container_cpu_cfs_throttled_periods_total", "Number of throttled CFS period intervals.", counter, nil}
	mCFSThrottledSecs = &metricDesc{"container_cpu_cfs_throttled_seconds_total", "Total time the container has been throttled, in seconds.", counter, nil}
	mMemCache         = &metricDesc{"container_memory_cache", "Bytes of page cache memory.", gauge, nil}
	mMemRSS           = &metricDesc{"container_memory_rss", "Size of RSS (anonymous memory) in bytes.", gauge, nil}
	mMemKernel        = &metricDesc{"container_memory_kernel_usage", "Kernel memory used by the container, in bytes.", gauge, nil}
	mMemMapped        = &metricDesc{"container_memory_mapped_file", "Size of memory mapped files, in bytes.", gauge, nil}
	mMemSwap          = &metricDesc{"container_memory_swap", "Container swap usage in bytes.", gauge, nil}
	mMemFailcnt       = &metricDesc{"container_memory_failcnt", "Number of times memory usage hit the limit.", counter, nil}
	mMemUsage         = &metricDesc{"container_memory_usage_bytes", "Current memory usage in bytes, page cache included.", gauge, nil}
	mMemMaxUsage      = &metricDesc{"container_memory_max_usage_bytes", "Maximum memory usage recorded, in bytes.", gauge, nil}
	mMemWorkingSet    = &metricDesc{"container_memory_working_set_bytes", "Current working set in bytes: usage without inactive page cache.", gauge, nil}
	mMemFailures      = &metricDesc{"container_memory_failures_total", "Cumulative count of memory allocation failures (page faults).", counter, []string{"failure_type", "scope"}}
	mOOMEvents        = &metricDesc{"container_oom_events_total", "Count of out-of-memory kills in the container.", counter, nil}
	mThreads          = &metricDesc{"container_threads", "Number of threads running in the container.", gauge, nil}
	mThreadsMax       = &metricDesc{"container_threads_max", "Maximum number of threads allowed in the container, 0 for no limit.", gauge, nil}
	mFsReadsBytes     = &metricDesc{"container_fs_reads_bytes_total", "Cumulative bytes read from a block device.", counter, deviceLabel}
	mFsReads          = &metricDesc{"container_fs_reads_total", "Cumulative count of reads completed on a block device.", counter, deviceLabel}
	mFsWritesBytes    = &metricDesc{"container_fs_writes_bytes_total", "Cumulative bytes written to a block device.", counter, deviceLabel}
	mFsWrites         = &metricDesc{"container_fs_writes_total", "Cumulative count of writes completed on a block device.", counter, deviceLabel}
	mBlkioDeviceUsage = &metricDesc{"container_blkio_device_usage_total", "Block I/O bytes by device and operation.", counter, []string{"device", "major", "minor", "operation"}}
	// The container's processes (cgroupstats.ReadProcesses).
	mProcesses       = &metricDesc{"container_processes", "Number of processes running in the container.", gauge, nil}
	mFileDescriptors = &metricDesc{"container_file_descriptors", "Number of open file descriptors of the container's processes.", gauge, nil}
	mSockets         = &metricDesc{"container_sockets", "Number of open sockets of the container's processes.", gauge, nil}
	// The container's writable layer and the filesystem holding it.
	mFsUsage       = &metricDesc{"container_fs_usage_bytes", "Bytes used by the container's writable layer.", gauge, deviceLabel}
	mFsLimit       = &metricDesc{"container_fs_limit_bytes", "Size of the filesystem holding the container's writable layer, in bytes.", gauge, deviceLabel}
	mFsInodesTotal = &metricDesc{"container_fs_inodes_total", "Number of inodes of the filesystem holding the container's writable layer.", gauge, deviceLabel}
	mFsInodesFree  = &metricDesc{"container_fs_inodes_free", "Number of free inodes of the filesystem holding the container's writable layer.", gauge, deviceLabel}
	// The container's record.
	mLastSeen         = &metricDesc{"container_last_seen", "Last time the container was seen, in seconds since the epoch.", gauge, nil}
	mStartTime        = &metricDesc{"container_start_time_seconds", "Start time of the container, in seconds since the epoch.", gauge, nil}
	mSpecCPUPeriod    = &metricDesc{"container_spec_cpu_period", "CPU period of the container, in microseconds.", gauge, nil}
	mSpecCPUShares    = &metricDesc{"container_spec_cpu_shares", "CPU shares of the container.", gauge, nil}
	mSpecMemLimit     = &metricDesc{"container_spec_memory_limit_bytes", "Memory limit of the container, 0 for none.", gauge, nil}
	mSpecMemSwapLimit = &metricDesc{"container_spec_memory_swap_limit_bytes", "Memory plus swap limit of the container, 0 for none.", gauge, nil}
	// The pod's network namespace (pod.NetworkStats), one value per interface.
	mNetRxBytes   = &metricDesc{"container_network_receive_bytes_total", "Cumulative bytes received.", counter, ifaceLabel}
	mNetRxPackets = &metricDesc{"container_network_receive_packets_total", "Cumulative packets received.", counter, ifaceLabel}
	mNetRxDropped = &metricDesc{"container_network_receive_packets_dropped_total", "Cumulative packets dropped while receiving.", counter, ifaceLabel}
	mNetRxErrors  = &metricDesc{"container_network_receive_errors_total", "Cumulative errors while receiving.", counter, ifaceLabel}
	mNetTxBytes   = &metricDesc{"container_network_transmit_bytes_total", "Cumulative bytes transmitted.", counter, ifaceLabel}
	mNetTxPackets = &metricDesc{"container_network_transmit_packets_total", "Cumulative packets transmitted.", counter, ifaceLabel}
	mNetTxDropped = &metricDesc{"container_network_transmit_packets_dropped_total", "Cumulative packets dropped while transmitting.", counter, ifaceLabel}
	mNetTxErrors  = &metricDesc{"container_network_transmit_errors_total", "Cumulative errors while transmitting.", counter, ifaceLabel}
)

// metricDescs is every metric, in the order ListMetricDescriptors lists them.
var metricDescs = []*metricDesc{
	mCPUUsage, mCPUUser, mCPUSystem, mCFSPeriods, mCFSThrottled, mCFSThrottledSecs,
	mMemCache, mMemRSS, mMemKernel, mMemMapped, mMemSwap, mMemFailcnt, mMemUsage, mMemMaxUsage, mMemWorkingSet, mMemFailures, mOOMEvents,
	mThreads, mThreadsMax, mProcesses, mFileDescriptors, mSockets,
	mFsReadsBytes, mFsReads, mFsWritesBytes, mFsWrites, mBlkioDeviceUsage,
	mFsUsage, mFsLimit, mFsInodesTotal, mFsInodesFree,
	mLastSeen, mStartTime, mSpecCPUPeriod, mSpecCPUShares, mSpecMemLimit, mSpecMemSwapLimit,
	mNetRxBytes, mNetRxPackets, mNetRxDropped, mNetRxErrors, mNetTxBytes, mNetTxPackets, mNetTxDropped, mNetTxErrors,
}
