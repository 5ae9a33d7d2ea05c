package cgroupstats

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// OOMKills is how many processes of the cgroup at path (as Read takes it)
// the OOM killer has ended: the oom_kill count of memory.events on v2, of
// memory.oom_control on v1. It reads one file, so it is cheap enough for
// every exit that might be an OOM kill.
func OOMKills(path string, systemd bool) (uint64, error) {
	if systemd {
		path = SlicePath(path)
	}
	file := filepath.Join(cgroupRoot, "memory", path, "memory.oom_control")
	if cgroups.Mode() == cgroups.Unified {
		file = filepath.Join(cgroupRoot, path, "memory.events")
	}
	return readOOMKillCount(file)
}

// readOOMKillCount reads the "oom_kill N" line of a flat keyed cgroup file;
// a file without one (a kernel before 4.13) counts 0.
func readOOMKillCount(file string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || key != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: oom_kill %q: %w", file, value, err)
		}
		return n, nil
	}
	return 0, sc.Err()
}
