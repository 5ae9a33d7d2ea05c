package cgroupstats

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Processes counts what a cgroup's processes hold, as cAdvisor reports it.
type Processes struct {
	// Processes is the number of processes in the cgroup and below.
	Processes uint64
	// FileDescriptors and Sockets are their open descriptors, and those
	// of them that are sockets.
	FileDescriptors uint64
	Sockets         uint64
}

// ReadProcesses lists the processes of the cgroup at path (and its
// children; path as for Read) and counts their open file descriptors in
// /proc. A process that ends while it is counted is left out.
func ReadProcesses(path string, systemd bool) (Processes, error) {
	pids, err := Pids(path, systemd)
	if err != nil {
		return Processes{}, err
	}
	return countDescriptors("/proc", pids), nil
}

// Pids lists the processes of the cgroup at path and its children (path
// as for Read).
func Pids(path string, systemd bool) ([]uint64, error) {
	if systemd {
		path = SlicePath(path)
	}
	var pids []uint64
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("loading cgroup %s: %w", path, err)
		}
		if pids, err = m.Procs(true); err != nil {
			return nil, fmt.Errorf("listing processes of cgroup %s: %w", path, err)
		}
		return pids, nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return nil, fmt.Errorf("loading cgroup %s: %w", path, err)
	}
	procs, err := cg.Processes(cgroup1.Memory, true)
	if err != nil {
		return nil, fmt.Errorf("listing processes of cgroup %s: %w", path, err)
	}
	for _, p := range procs {
		pids = append(pids, uint64(p.Pid))
	}
	return pids, nil
}

// countDescriptors counts the fds and sockets of pids under procRoot.
func countDescriptors(procRoot string, pids []uint64) Processes {
	seen := map[uint64]bool{}
	var out Processes
	for _, pid := range pids {
		if seen[pid] {
			continue
		}
		seen[pid] = true
		dir := filepath.Join(procRoot, strconv.FormatUint(pid, 10), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		out.Processes++
		out.FileDescriptors += uint64(len(fds))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
				out.Sockets++
			}
		}
	}
	return out
}
