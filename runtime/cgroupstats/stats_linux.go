// Package cgroupstats reads CPU and memory usage of a cgroup, on cgroup v1
// (legacy or hybrid) and v2 hosts, with containerd's cgroups library.
package cgroupstats

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Stats is one sample of a cgroup's usage.
type Stats struct {
	Timestamp time.Time
	// CPUUsageNanos is the cumulative CPU time.
	CPUUsageNanos uint64
	// MemoryUsageBytes is the current usage including page cache.
	MemoryUsageBytes uint64
	// MemoryWorkingSetBytes is usage minus inactive file cache, what
	// kubelet evicts on.
	MemoryWorkingSetBytes uint64
	MemoryRSSBytes        uint64
	PageFaults            uint64
	MajorPageFaults       uint64
}

// Read samples the cgroup at path, a cgroupfs path ("/kubepods/pod1") or,
// with the systemd driver, a slice name ("kubepods-pod1.slice").
func Read(path string, systemd bool) (Stats, error) {
	if systemd {
		path = SlicePath(path)
	}
	now := time.Now()
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(path)
		if err != nil {
			return Stats{}, fmt.Errorf("loading cgroup %s: %w", path, err)
		}
		s, err := m.Stat()
		if err != nil {
			return Stats{}, fmt.Errorf("reading cgroup %s: %w", path, err)
		}
		st := Stats{Timestamp: now}
		if s.CPU != nil {
			st.CPUUsageNanos = s.CPU.UsageUsec * 1000
		}
		if mem := s.Memory; mem != nil {
			st.MemoryUsageBytes = mem.Usage
			st.MemoryWorkingSetBytes = workingSet(mem.Usage, mem.InactiveFile)
			st.MemoryRSSBytes = mem.Anon
			st.PageFaults, st.MajorPageFaults = mem.Pgfault, mem.Pgmajfault
		}
		return st, nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return Stats{}, fmt.Errorf("loading cgroup %s: %w", path, err)
	}
	s, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Stats{}, fmt.Errorf("reading cgroup %s: %w", path, err)
	}
	st := Stats{Timestamp: now}
	if s.CPU != nil && s.CPU.Usage != nil {
		st.CPUUsageNanos = s.CPU.Usage.Total
	}
	if mem := s.Memory; mem != nil && mem.Usage != nil {
		st.MemoryUsageBytes = mem.Usage.Usage
		st.MemoryWorkingSetBytes = workingSet(mem.Usage.Usage, mem.TotalInactiveFile)
		st.MemoryRSSBytes = mem.TotalRSS
		st.PageFaults, st.MajorPageFaults = mem.TotalPgFault, mem.TotalPgMajFault
	}
	return st, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}

// SlicePath expands a systemd slice name to its cgroup path, as systemd
// nests slices: "a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice.
func SlicePath(slice string) string {
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") {
		return slice
	}
	name := strings.TrimSuffix(slice, ".slice")
	parts := strings.Split(name, "-")
	path := "/"
	for i := range parts {
		path = filepath.Join(path, strings.Join(parts[:i+1], "-")+".slice")
	}
	return path
}
