package cgroupstats

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

var fixtureUsage = Usage{
	CPUUsageNanos: 2500000000, MemoryUsageBytes: 12500000, MemoryWorkingSetBytes: 12500000 - 2048000,
	MemoryRSSBytes: 4096000, PageFaults: 900, MajorPageFaults: 7,
}

// TestReadUsageV1 reads a cgroup v1 fixture: hierarchical (total_*)
// memory.stat values, not the cgroup's own.
func TestReadUsageV1(t *testing.T) {
	u, err := readUsageV1("testdata/v1/cpuacct", "testdata/v1/memory", "/kubepods/pod1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Timestamp.IsZero() {
		t.Error("no timestamp")
	}
	u.Timestamp = time.Time{}
	if u != fixtureUsage {
		t.Errorf("got  %+v\nwant %+v", u, fixtureUsage)
	}
}

// TestReadUsageV2 reads the v2 fixture TestReadV2 reads, and must agree
// with Read's Stats on it.
func TestReadUsageV2(t *testing.T) {
	u, err := readUsageV2("testdata/v2", "/kubepods/pod1")
	if err != nil {
		t.Fatal(err)
	}
	u.Timestamp = time.Time{}
	if u != fixtureUsage {
		t.Errorf("got  %+v\nwant %+v", u, fixtureUsage)
	}
}

func TestReadUsageMissingCgroup(t *testing.T) {
	if _, err := readUsageV1("testdata/v1/cpuacct", "testdata/v1/memory", "/kubepods/gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("v1: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := readUsageV2("testdata/v2", "/kubepods/gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("v2: err = %v, want fs.ErrNotExist", err)
	}
}

func TestParseV1Mounts(t *testing.T) {
	info := strings.Join([]string{
		"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
		"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct",
		"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
	}, "\n")
	got, err := parseV1Mounts(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if got["cpuacct"] != "/sys/fs/cgroup/cpu,cpuacct" || got["cpu"] != "/sys/fs/cgroup/cpu,cpuacct" || got["memory"] != "/sys/fs/cgroup/memory" {
		t.Errorf("mounts = %v", got)
	}
	if _, ok := got["unified"]; ok {
		t.Errorf("cgroup2 mount taken for a v1 controller: %v", got)
	}
}

// TestReadUsageAgreesWithRead reads this host's root cgroup both ways:
// memory moves between the reads, so only what cannot differ is compared.
func TestReadUsageAgreesWithRead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	full, err := Read("/", false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := ReadUsage("/", false)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUUsageNanos < full.CPUUsageNanos {
		t.Errorf("CPU usage went back from %d (Read) to %d (ReadUsage)", full.CPUUsageNanos, u.CPUUsageNanos)
	}
	if u.PageFaults < full.PageFaults {
		t.Errorf("page faults went back from %d (Read) to %d (ReadUsage)", full.PageFaults, u.PageFaults)
	}
	if u.MemoryUsageBytes == 0 || u.MemoryWorkingSetBytes > u.MemoryUsageBytes || u.MemoryRSSBytes == 0 {
		t.Errorf("root cgroup usage = %+v, want non-zero memory and working set within usage", u)
	}
	if _, err := ReadUsage("/slipway-no-such-cgroup", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing cgroup: err = %v, want fs.ErrNotExist", err)
	}
}

func BenchmarkReadUsageRoot(b *testing.B) {
	for b.Loop() {
		if _, err := ReadUsage("/", false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadRoot(b *testing.B) {
	for b.Loop() {
		if _, err := Read("/", false); err != nil {
			b.Fatal(err)
		}
	}
}
