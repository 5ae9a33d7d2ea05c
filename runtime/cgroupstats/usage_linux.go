package cgroupstats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3"
)

// Usage is the CPU and memory a cgroup has used: what the CRI's stats RPCs
// (ContainerStats, PodSandboxStats and their lists) report. Its fields
// mean what Stats' fields of the same names mean.
type Usage struct {
	Timestamp             time.Time
	CPUUsageNanos         uint64
	MemoryUsageBytes      uint64
	MemoryWorkingSetBytes uint64
	MemoryRSSBytes        uint64
	PageFaults            uint64
	MajorPageFaults       uint64
}

// Usage is the part of s that ReadUsage reads.
func (s Stats) Usage() Usage {
	return Usage{
		Timestamp: s.Timestamp, CPUUsageNanos: s.CPUUsageNanos,
		MemoryUsageBytes: s.MemoryUsageBytes, MemoryWorkingSetBytes: s.MemoryWorkingSetBytes,
		MemoryRSSBytes: s.MemoryRSSBytes, PageFaults: s.PageFaults, MajorPageFaults: s.MajorPageFaults,
	}
}

// ReadUsage samples the CPU and memory use of the cgroup at path (as for
// Read). It reads three files (v1: cpuacct.usage, memory.usage_in_bytes,
// memory.stat; v2: cpu.stat, memory.current, memory.stat) where Read
// loads and reads every controller, so a list of hundreds of containers
// stays cheap. A file the cgroup lacks (a controller not enabled for it)
// reads as 0; a cgroup that has none of them is an error wrapping
// fs.ErrNotExist.
func ReadUsage(path string, systemd bool) (Usage, error) {
	if systemd {
		path = SlicePath(path)
	}
	if cgroups.Mode() == cgroups.Unified {
		return readUsageV2("/sys/fs/cgroup", path)
	}
	mounts, err := v1Mounts()
	if err != nil {
		return Usage{}, err
	}
	if mounts["cpuacct"] == "" || mounts["memory"] == "" {
		return Usage{}, fmt.Errorf("reading cgroup %s: the cpuacct and memory controllers are not both mounted", path)
	}
	return readUsageV1(mounts["cpuacct"], mounts["memory"], path)
}

// readUsageV1 reads path's usage from the cpuacct and memory hierarchies
// mounted at cpuacct and memory.
func readUsageV1(cpuacct, memory, path string) (Usage, error) {
	u := Usage{Timestamp: time.Now()}
	var found bool
	var err error
	read := func(file string, parse func([]byte) error) {
		if err != nil {
			return
		}
		b, rerr := os.ReadFile(file)
		switch {
		case errors.Is(rerr, fs.ErrNotExist):
			return
		case rerr != nil:
			err = rerr
			return
		}
		found = true
		if perr := parse(b); perr != nil {
			err = fmt.Errorf("%s: %w", file, perr)
		}
	}
	read(filepath.Join(cpuacct, path, "cpuacct.usage"), uintInto(&u.CPUUsageNanos))
	read(filepath.Join(memory, path, "memory.usage_in_bytes"), uintInto(&u.MemoryUsageBytes))
	var inactiveFile uint64
	read(filepath.Join(memory, path, "memory.stat"), statInto(map[string]*uint64{
		"total_inactive_file": &inactiveFile, "total_rss": &u.MemoryRSSBytes,
		"total_pgfault": &u.PageFaults, "total_pgmajfault": &u.MajorPageFaults,
	}))
	if err == nil && !found {
		err = fmt.Errorf("cgroup %s: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return Usage{}, fmt.Errorf("reading cgroup %s: %w", path, err)
	}
	u.MemoryWorkingSetBytes = workingSet(u.MemoryUsageBytes, inactiveFile)
	return u, nil
}

// readUsageV2 reads path's usage under the cgroup2 mount at mount.
func readUsageV2(mount, path string) (Usage, error) {
	dir := filepath.Join(mount, path)
	u := Usage{Timestamp: time.Now()}
	if _, err := os.Stat(dir); err != nil {
		return Usage{}, fmt.Errorf("reading cgroup %s: %w", path, err)
	}
	var usageUsec, inactiveFile uint64
	for file, parse := range map[string]func([]byte) error{
		"cpu.stat":       statInto(map[string]*uint64{"usage_usec": &usageUsec}),
		"memory.current": uintInto(&u.MemoryUsageBytes),
		"memory.stat": statInto(map[string]*uint64{
			"inactive_file": &inactiveFile, "anon": &u.MemoryRSSBytes,
			"pgfault": &u.PageFaults, "pgmajfault": &u.MajorPageFaults,
		}),
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = parse(b)
		}
		if err != nil {
			return Usage{}, fmt.Errorf("reading cgroup %s: %s: %w", path, file, err)
		}
	}
	u.CPUUsageNanos = usageUsec * 1000
	u.MemoryWorkingSetBytes = workingSet(u.MemoryUsageBytes, inactiveFile)
	return u, nil
}

// uintInto parses a file holding one unsigned number into dst.
func uintInto(dst *uint64) func([]byte) error {
	return func(b []byte) error {
		v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
}

// statInto parses a "key value" per line file, storing the values of the
// keys in want; other keys are skipped.
func statInto(want map[string]*uint64) func([]byte) error {
	return func(b []byte) error {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			key, val, ok := strings.Cut(sc.Text(), " ")
			dst := want[key]
			if !ok || dst == nil {
				continue
			}
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			*dst = v
		}
		return sc.Err()
	}
}

// v1Mounts maps each cgroup v1 controller to where its hierarchy is
// mounted, from /proc/self/mountinfo, read once: cgroup hierarchies are
// mounted before slipwayd starts and stay put.
var v1Mounts = sync.OnceValues(func() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseV1Mounts(f)
})

// parseV1Mounts reads mountinfo lines: "ID PARENT MAJ:MIN ROOT MOUNTPOINT
// OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"; a cgroup (v1) mount's
// super options name its controllers ("rw,cpu,cpuacct").
func parseV1Mounts(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 || tail[0] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(tail[2], ",") {
			if _, seen := out[opt]; !seen {
				out[opt] = fields[4]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return out, nil
}
