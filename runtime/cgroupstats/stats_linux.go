// Package cgroupstats reads the usage of a cgroup, on cgroup v1 (legacy or
// hybrid) and v2 hosts, with containerd's cgroups library. The CRI's stats
// RPCs and its metrics RPCs both read through Read, so the two never
// disagree.
package cgroupstats

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	stats1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/cgroups/v3/cgroup2"
	stats2 "github.com/containerd/cgroups/v3/cgroup2/stats"
)

// Stats is one sample of a cgroup's usage. A counter the cgroup version
// does not have is 0 (memory failcnt is v2's memory.events "max").
type Stats struct {
	Timestamp time.Time
	// CPUUsageNanos is the cumulative CPU time; User and System split it.
	CPUUsageNanos  uint64
	CPUUserNanos   uint64
	CPUSystemNanos uint64
	// CFSPeriods, CFSThrottledPeriods and CFSThrottledNanos count CFS
	// quota enforcement.
	CFSPeriods          uint64
	CFSThrottledPeriods uint64
	CFSThrottledNanos   uint64
	// MemoryUsageBytes is the current usage including page cache.
	MemoryUsageBytes uint64
	// MemoryWorkingSetBytes is usage minus inactive file cache, what
	// kubelet evicts on.
	MemoryWorkingSetBytes uint64
	MemoryRSSBytes        uint64
	MemoryCacheBytes      uint64
	MemoryKernelBytes     uint64
	MemoryMappedFileBytes uint64
	MemorySwapBytes       uint64
	// MemoryMaxUsageBytes is the peak usage (0 where the kernel keeps none).
	MemoryMaxUsageBytes uint64
	// MemoryFailcnt counts hits of the memory limit.
	MemoryFailcnt   uint64
	PageFaults      uint64
	MajorPageFaults uint64
	// OOMKills counts processes of the cgroup the OOM killer ended.
	OOMKills uint64
	// Tasks is pids.current (threads); TasksMax is pids.max, 0 for none.
	Tasks    uint64
	TasksMax uint64
	// IO is the block I/O by device.
	IO []DeviceIO
}

// DeviceIO is a cgroup's block I/O on one device.
type DeviceIO struct {
	Major, Minor          uint64
	ReadBytes, WriteBytes uint64
	Reads, Writes         uint64
}

// Read samples the cgroup at path, a cgroupfs path ("/kubepods/pod1") or,
// with the systemd driver, a slice name ("kubepods-pod1.slice").
func Read(path string, systemd bool) (Stats, error) {
	if systemd {
		path = SlicePath(path)
	}
	if cgroups.Mode() == cgroups.Unified {
		return readV2(path)
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return Stats{}, fmt.Errorf("loading cgroup %s: %w", path, err)
	}
	now := time.Now()
	s, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Stats{}, fmt.Errorf("reading cgroup %s: %w", path, err)
	}
	return fromV1(now, s), nil
}

// readV2 reads path under the cgroup2 mount (or under opts' mountpoint).
func readV2(path string, opts ...cgroup2.InitOpts) (Stats, error) {
	m, err := cgroup2.Load(path, opts...)
	if err != nil {
		return Stats{}, fmt.Errorf("loading cgroup %s: %w", path, err)
	}
	now := time.Now()
	s, err := m.Stat()
	if err != nil {
		return Stats{}, fmt.Errorf("reading cgroup %s: %w", path, err)
	}
	return fromV2(now, s), nil
}

func fromV2(now time.Time, s *stats2.Metrics) Stats {
	st := Stats{Timestamp: now}
	if cpu := s.CPU; cpu != nil {
		st.CPUUsageNanos = cpu.UsageUsec * 1000
		st.CPUUserNanos, st.CPUSystemNanos = cpu.UserUsec*1000, cpu.SystemUsec*1000
		st.CFSPeriods, st.CFSThrottledPeriods, st.CFSThrottledNanos = cpu.NrPeriods, cpu.NrThrottled, cpu.ThrottledUsec*1000
	}
	if mem := s.Memory; mem != nil {
		st.MemoryUsageBytes = mem.Usage
		st.MemoryWorkingSetBytes = workingSet(mem.Usage, mem.InactiveFile)
		st.MemoryRSSBytes = mem.Anon
		st.MemoryCacheBytes = mem.File
		st.MemoryKernelBytes = mem.KernelStack + mem.Slab + mem.Sock
		st.MemoryMappedFileBytes = mem.FileMapped
		st.MemorySwapBytes = mem.SwapUsage
		st.MemoryMaxUsageBytes = mem.MaxUsage
		st.PageFaults, st.MajorPageFaults = mem.Pgfault, mem.Pgmajfault
	}
	if ev := s.MemoryEvents; ev != nil {
		st.MemoryFailcnt, st.OOMKills = ev.Max, ev.OomKill
	}
	if p := s.Pids; p != nil {
		st.Tasks, st.TasksMax = p.Current, p.Limit
	}
	if io := s.Io; io != nil {
		for _, e := range io.Usage {
			st.IO = append(st.IO, DeviceIO{Major: e.Major, Minor: e.Minor, ReadBytes: e.Rbytes, WriteBytes: e.Wbytes, Reads: e.Rios, Writes: e.Wios})
		}
	}
	return st
}

func fromV1(now time.Time, s *stats1.Metrics) Stats {
	st := Stats{Timestamp: now}
	if cpu := s.CPU; cpu != nil {
		if u := cpu.Usage; u != nil {
			st.CPUUsageNanos, st.CPUUserNanos, st.CPUSystemNanos = u.Total, u.User, u.Kernel
		}
		if t := cpu.Throttling; t != nil {
			st.CFSPeriods, st.CFSThrottledPeriods, st.CFSThrottledNanos = t.Periods, t.ThrottledPeriods, t.ThrottledTime
		}
	}
	if mem := s.Memory; mem != nil && mem.Usage != nil {
		st.MemoryUsageBytes = mem.Usage.Usage
		st.MemoryWorkingSetBytes = workingSet(mem.Usage.Usage, mem.TotalInactiveFile)
		st.MemoryRSSBytes = mem.TotalRSS
		st.MemoryCacheBytes = mem.TotalCache
		st.MemoryMappedFileBytes = mem.TotalMappedFile
		st.MemoryMaxUsageBytes = mem.Usage.Max
		st.MemoryFailcnt = mem.Usage.Failcnt
		st.PageFaults, st.MajorPageFaults = mem.TotalPgFault, mem.TotalPgMajFault
		if mem.Kernel != nil {
			st.MemoryKernelBytes = mem.Kernel.Usage
		}
		// memsw counts memory and swap together.
		if mem.Swap != nil && mem.Swap.Usage > mem.Usage.Usage {
			st.MemorySwapBytes = mem.Swap.Usage - mem.Usage.Usage
		}
	}
	if oom := s.MemoryOomControl; oom != nil {
		st.OOMKills = oom.OomKill
	}
	if p := s.Pids; p != nil {
		st.Tasks, st.TasksMax = p.Current, p.Limit
	}
	if b := s.Blkio; b != nil {
		dev := map[[2]uint64]*DeviceIO{}
		var order [][2]uint64
		entry := func(e *stats1.BlkIOEntry) *DeviceIO {
			k := [2]uint64{e.Major, e.Minor}
			if dev[k] == nil {
				dev[k] = &DeviceIO{Major: e.Major, Minor: e.Minor}
				order = append(order, k)
			}
			return dev[k]
		}
		// byOp stores a Read or Write entry's value in the field of its op.
		byOp := func(e *stats1.BlkIOEntry, read, write func(*DeviceIO) *uint64) {
			switch e.Op {
			case "Read":
				*read(entry(e)) = e.Value
			case "Write":
				*write(entry(e)) = e.Value
			}
		}
		for _, e := range b.IoServiceBytesRecursive {
			byOp(e, func(d *DeviceIO) *uint64 { return &d.ReadBytes }, func(d *DeviceIO) *uint64 { return &d.WriteBytes })
		}
		for _, e := range b.IoServicedRecursive {
			byOp(e, func(d *DeviceIO) *uint64 { return &d.Reads }, func(d *DeviceIO) *uint64 { return &d.Writes })
		}
		for _, k := range order {
			st.IO = append(st.IO, *dev[k])
		}
	}
	return st
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
