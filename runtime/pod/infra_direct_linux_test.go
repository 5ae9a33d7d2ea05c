package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"
)

// A direct infra whose start fails after it joined its cgroup leaves
// neither the process nor the cgroup behind.
func TestDirectInfraFailedStartLeavesNoCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	state := t.TempDir()
	d, err := NewDirectInfra(buildInfra(t), t.TempDir(), state)
	if err != nil {
		t.Fatal(err)
	}
	id := "direct-infra-cgroup-test"
	// The pod's state dir is a file: recording the pid fails after the
	// process joined its cgroup.
	if err := os.WriteFile(filepath.Join(state, id), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cgroupsPath := "/slipway-test/" + id
	t.Cleanup(func() { _ = deleteCgroup(cgroupsPath); _ = deleteCgroup("/slipway-test") })

	err = d.Start(context.Background(), Sandbox{ID: id}, cgroupsPath)
	if err == nil {
		t.Fatal("Start succeeded with an unwritable pod state dir")
	}
	t.Logf("Start: %v", err)
	for _, dir := range cgroupDirs(cgroupsPath) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s is left behind (stat: %v)", dir, err)
		}
	}
	if n := len(d.exited); n != 0 {
		t.Errorf("%d infra processes are still tracked", n)
	}
}

// The direct infra runs with infraEnv as its whole environment, not
// slipwayd's: one P, so it holds less memory.
func TestDirectInfraEnvironment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	state := t.TempDir()
	d, err := NewDirectInfra(buildInfra(t), t.TempDir(), state)
	if err != nil {
		t.Fatal(err)
	}
	id := "direct-infra-env-test"
	if err := os.Mkdir(filepath.Join(state, id), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLIPWAY_INFRA_ENV_TEST", "leaked")
	if err := d.Start(context.Background(), Sandbox{ID: id}, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(context.Background(), id); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	pid, err := d.Pid(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(environ), "\x00"), "\x00")
	if !slices.Equal(got, infraEnv) {
		t.Errorf("infra environment is %q, want %q", got, infraEnv)
	}
}

// buildInfra builds cmd/slipway-infra as make build does and returns its
// path; it skips the test when the build fails (no Go toolchain).
func buildInfra(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slipway-infra")
	build := exec.Command("go", "build", "-o", bin, "github.com/slipway-dev/slipway/cmd/slipway-infra")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("building slipway-infra: %v\n%s", err, out)
	}
	return bin
}

// cgroupDirs are the directories of cgroup path on this host.
func cgroupDirs(path string) []string {
	if cgroups.Mode() == cgroups.Unified {
		return []string{filepath.Join("/sys/fs/cgroup", path)}
	}
	return []string{filepath.Join("/sys/fs/cgroup/memory", path), filepath.Join("/sys/fs/cgroup/pids", path), filepath.Join("/sys/fs/cgroup/cpu", path)}
}
