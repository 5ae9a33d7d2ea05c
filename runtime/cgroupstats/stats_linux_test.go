package cgroupstats

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	stats1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/cgroups/v3/cgroup2"
)

func TestSlicePath(t *testing.T) {
	for in, want := range map[string]string{
		"kubepods.slice":                  "/kubepods.slice",
		"kubepods-besteffort-pod12.slice": "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice",
		"/kubepods/besteffort/pod12":      "/kubepods/besteffort/pod12",
	} {
		if got := SlicePath(in); got != want {
			t.Errorf("SlicePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadRootCgroup reads this host's root cgroup, which always exists and
// has used CPU and memory.
func TestReadRootCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	s, err := Read("/", false)
	if err != nil {
		t.Fatal(err)
	}
	if s.CPUUsageNanos == 0 || s.MemoryUsageBytes == 0 {
		t.Errorf("root cgroup stats = %+v, want non-zero CPU and memory", s)
	}
	if s.MemoryWorkingSetBytes > s.MemoryUsageBytes {
		t.Errorf("working set %d above usage %d", s.MemoryWorkingSetBytes, s.MemoryUsageBytes)
	}
}

// TestReadV2 reads a cgroup v2 fixture: this machine runs cgroup v1, so
// the v2 files are checked here.
func TestReadV2(t *testing.T) {
	s, err := readV2("/kubepods/pod1", cgroup2.WithMountpoint("testdata/v2"))
	if err != nil {
		t.Fatal(err)
	}
	s.Timestamp = time.Time{}
	want := Stats{
		CPUUsageNanos: 2500000000, CPUUserNanos: 2000000000, CPUSystemNanos: 500000000,
		CFSPeriods: 40, CFSThrottledPeriods: 3, CFSThrottledNanos: 120000000,
		MemoryUsageBytes: 12500000, MemoryWorkingSetBytes: 12500000 - 2048000, MemoryRSSBytes: 4096000,
		MemoryCacheBytes: 8192000, MemoryKernelBytes: 16384 + 32768 + 4096, MemoryMappedFileBytes: 1024000,
		MemorySwapBytes: 65536, MemoryMaxUsageBytes: 20000000, MemoryFailcnt: 5,
		PageFaults: 900, MajorPageFaults: 7, OOMKills: 1, Tasks: 3, TasksMax: 512,
		IO: []DeviceIO{{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestFromV1(t *testing.T) {
	m := &stats1.Metrics{
		CPU: &stats1.CPUStat{
			Usage:      &stats1.CPUUsage{Total: 30, User: 20, Kernel: 10},
			Throttling: &stats1.Throttle{Periods: 4, ThrottledPeriods: 1, ThrottledTime: 99},
		},
		Memory: &stats1.MemoryStat{
			TotalRSS: 100, TotalCache: 200, TotalMappedFile: 50, TotalInactiveFile: 80,
			TotalPgFault: 9, TotalPgMajFault: 1,
			Usage:  &stats1.MemoryEntry{Usage: 300, Max: 400, Failcnt: 2},
			Swap:   &stats1.MemoryEntry{Usage: 350},
			Kernel: &stats1.MemoryEntry{Usage: 12},
		},
		MemoryOomControl: &stats1.MemoryOomControl{OomKill: 3},
		Pids:             &stats1.PidsStat{Current: 5, Limit: 0},
		Blkio: &stats1.BlkIOStat{
			IoServiceBytesRecursive: []*stats1.BlkIOEntry{{Op: "Read", Major: 8, Value: 10}, {Op: "Write", Major: 8, Value: 20}, {Op: "Total", Major: 8, Value: 30}},
			IoServicedRecursive:     []*stats1.BlkIOEntry{{Op: "Read", Major: 8, Value: 1}, {Op: "Write", Major: 8, Value: 2}},
		},
	}
	want := Stats{
		CPUUsageNanos: 30, CPUUserNanos: 20, CPUSystemNanos: 10, CFSPeriods: 4, CFSThrottledPeriods: 1, CFSThrottledNanos: 99,
		MemoryUsageBytes: 300, MemoryWorkingSetBytes: 220, MemoryRSSBytes: 100, MemoryCacheBytes: 200, MemoryKernelBytes: 12,
		MemoryMappedFileBytes: 50, MemorySwapBytes: 50, MemoryMaxUsageBytes: 400, MemoryFailcnt: 2,
		PageFaults: 9, MajorPageFaults: 1, OOMKills: 3, Tasks: 5,
		IO: []DeviceIO{{Major: 8, ReadBytes: 10, WriteBytes: 20, Reads: 1, Writes: 2}},
	}
	if got := fromV1(time.Time{}, m); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestCountDescriptors(t *testing.T) {
	proc := t.TempDir()
	fd := filepath.Join(proc, "7", "fd")
	if err := os.MkdirAll(fd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"0": "/dev/null", "1": "socket:[123]", "2": "pipe:[9]", "3": "socket:[124]"} {
		if err := os.Symlink(target, filepath.Join(fd, name)); err != nil {
			t.Fatal(err)
		}
	}
	// 8 ended before it was counted.
	got := countDescriptors(proc, []uint64{7, 7, 8})
	if want := (Processes{Processes: 1, FileDescriptors: 4, Sockets: 2}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
