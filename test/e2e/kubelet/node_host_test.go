package kubelet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/gomega"
)

// kubeletSysctls are the kernel settings kubelet's container manager
// rewrites at start-up (setupKernelTunables: vm.overcommit_memory=1,
// kernel.panic=10, kernel.panic_on_oops=1, ...); the suite puts them back.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// Kubelet's pod log roots; kubelet makes them if they are missing.
const (
	podLogsRoot       = "/var/log/pods"
	containerLogsRoot = "/var/log/containers"
)

// nodeHost is what the suite changes on the node for its kubelet and puts
// back afterwards: the sysctls kubelet rewrites, a cgroup root of its own in
// every cgroup v1 hierarchy (kubelet makes kubepods/ and pod cgroups below
// it, so nothing lands in a kubepods/ another kubelet may use), and the
// suite namespace's entries under /var/log/pods and /var/log/containers.
type nodeHost struct {
	cgroupRoot  string            // as kubelet's cgroupRoot, e.g. /slipway-kubelet-e2e-PID
	sysctls     map[string]string // original values
	createdLogs []string          // log roots that did not exist before the suite
}

// prepareNodeHost records the sysctls and creates the cgroup root.
func prepareNodeHost() *nodeHost {
	h := &nodeHost{cgroupRoot: fmt.Sprintf("/slipway-kubelet-e2e-%d", os.Getpid()), sysctls: map[string]string{}}
	for _, s := range kubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		Expect(err).NotTo(HaveOccurred())
		h.sysctls[s] = string(b)
	}
	for _, root := range []string{podLogsRoot, containerLogsRoot} {
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			h.createdLogs = append(h.createdLogs, root)
		}
	}
	for _, hier := range cgroupHierarchies() {
		dir := filepath.Join(hier, h.cgroupRoot)
		Expect(os.Mkdir(dir, 0o755)).To(Succeed())
		// A new cpuset cgroup has no CPUs or memory nodes: give it its
		// parent's, as cgroup.clone_children would.
		if filepath.Base(hier) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(hier, f))
				Expect(err).NotTo(HaveOccurred())
				Expect(os.WriteFile(filepath.Join(dir, f), b, 0o644)).To(Succeed())
			}
		}
	}
	return h
}

// cgroupHierarchies are the mounted cgroup hierarchies under /sys/fs/cgroup
// (cgroup v1 controllers, the named systemd one and the unified one of a
// hybrid layout); symlinks such as cpu,cpuacct are skipped.
func cgroupHierarchies() []string {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// cgroupDirs lists every cgroup under the suite's cgroup root in every
// hierarchy, the root itself included.
func (h *nodeHost) cgroupDirs() []string {
	var dirs []string
	for _, hier := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(hier, h.cgroupRoot), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
}

// podCgroups lists the pod-level cgroups (kubepods/.../pod<UID>) under the
// suite's cgroup root, in any hierarchy.
func (h *nodeHost) podCgroups() []string {
	var out []string
	for _, d := range h.cgroupDirs() {
		if strings.HasPrefix(filepath.Base(d), "pod") {
			out = append(out, d)
		}
	}
	return out
}

// restore removes the cgroup root (deepest first; a cgroup still holding a
// process fails the suite), the suite's log entries and the log roots it
// created, and writes the sysctls back. Run it after every pod is gone.
func (h *nodeHost) restore() {
	dirs := h.cgroupDirs()
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var busy []string
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			busy = append(busy, fmt.Sprintf("%s: %v", d, err))
		}
	}
	for _, pattern := range []string{podLogsRoot + "/" + podNamespace + "_*", containerLogsRoot + "/*_" + podNamespace + "_*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			_ = os.RemoveAll(m)
		}
	}
	for _, root := range h.createdLogs {
		_ = os.Remove(root) // only when empty: other kubelets may log there now
	}
	for s, v := range h.sysctls {
		Expect(os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)).To(Succeed(), "restoring %s", s)
	}
	Expect(busy).To(BeEmpty(), "cgroups left under the suite's cgroup root")
}
