package cgroupstats

import (
	"os"
	"testing"
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
