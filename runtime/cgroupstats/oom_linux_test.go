package cgroupstats

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
)

func TestReadOOMKillCount(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          uint64
		wantErr       bool
	}{
		{"v1 memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 2, false},
		{"v2 memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n", 1, false},
		{"kernel without the counter", "oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"malformed count", "oom_kill many\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name)
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readOOMKillCount(file)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("readOOMKillCount = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := readOOMKillCount(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
}

// TestOOMKillsCountsARealOOMKill runs a process that allocates without
// bound in a memory cgroup of its own with a 16 MiB limit, and reads the
// kill the kernel counted. Needs root.
func TestOOMKillsCountsARealOOMKill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes a memory cgroup")
	}
	path := fmt.Sprintf("/slipway-oom-test-%d", os.Getpid())
	dir := filepath.Join(cgroupRoot, "memory", path)
	limitFile := "memory.limit_in_bytes"
	if cgroups.Mode() == cgroups.Unified {
		dir, limitFile = filepath.Join(cgroupRoot, path), "memory.max"
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no memory cgroup here: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte("16777216"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := OOMKills(path, false); err != nil || n != 0 {
		t.Fatalf("OOMKills of a new cgroup = %d, %v; want 0", n, err)
	}
	// tail keeps a line it has not ended yet: on /dev/zero it grows until
	// the OOM killer ends it.
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec tail /dev/zero`, "sh", dir)
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("tail /dev/zero ended with %v, want a kill", err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("tail /dev/zero ended with %v, want SIGKILL", err)
	}
	if n, err := OOMKills(path, false); err != nil || n != 1 {
		t.Fatalf("OOMKills after an OOM kill = %d, %v; want 1", n, err)
	}
}
