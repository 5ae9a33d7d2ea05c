package cri

import (
	"github.com/slipway-dev/slipway/runtime/cgroupstats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cpuUsage and memoryUsage translate a cgroup's usage to the CRI's stats.
func cpuUsage(cg cgroupstats.Usage) *runtimeapi.CpuUsage {
	return &runtimeapi.CpuUsage{
		Timestamp:            cg.Timestamp.UnixNano(),
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cg.CPUUsageNanos},
	}
}

func memoryUsage(cg cgroupstats.Usage) *runtimeapi.MemoryUsage {
	return &runtimeapi.MemoryUsage{
		Timestamp:       cg.Timestamp.UnixNano(),
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: cg.MemoryWorkingSetBytes},
		UsageBytes:      &runtimeapi.UInt64Value{Value: cg.MemoryUsageBytes},
		RssBytes:        &runtimeapi.UInt64Value{Value: cg.MemoryRSSBytes},
		PageFaults:      &runtimeapi.UInt64Value{Value: cg.PageFaults},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: cg.MajorPageFaults},
	}
}
