package spec

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/oomscore"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	resourcesField = "linux.resources"
	// systemdScope is the prefix of a container's systemd scope
	// (PARENT:cri-slipway:ID), as containerd's is "cri-containerd".
	systemdScope = "cri-slipway"
	// systemdDefaultSlice holds containers whose pod has no cgroup parent.
	systemdDefaultSlice = "system.slice"
)

var hugepageSize = regexp.MustCompile(`^[0-9]+[KMGT]B$`)

// CgroupsPath is the OCI cgroupsPath of container id under its pod's
// cgroup parent: PARENT/ID with the cgroupfs driver (empty, keeping the
// spec's default, when parent is), PARENT:cri-slipway:ID with systemd
// (system.slice when parent is empty).
func CgroupsPath(driver, parent, id string) (string, error) {
	switch driver {
	case "", "cgroupfs":
		if parent == "" {
			return "", nil
		}
		return filepath.Join(parent, id), nil
	case "systemd":
		if parent == "" {
			parent = systemdDefaultSlice
		}
		return parent + ":" + systemdScope + ":" + id, nil
	}
	return "", fmt.Errorf("cgroup driver %q is neither cgroupfs nor systemd", driver)
}

// WithResources sets the container's CPU, memory, hugepage and unified
// cgroup limits from the CRI's (nil sets none), keeping the spec's other
// resources (device rules):
//   - cpu_shares, cpu_quota, cpu_period, cpuset_cpus and cpuset_mems when
//     non-zero or non-empty;
//   - memory_limit_in_bytes; memory+swap is memory_swap_limit_in_bytes, or
//     the memory limit (no swap) when only that is given, where the node
//     accounts swap (as containerd does);
//   - hugepage_limits: where the node has no hugetlb controller, limits of
//     0 (kubelet sends one per page size) are dropped and any other limit
//     is an error; containerd drops all by default;
//   - unified: cgroup v2 only; an error on v1.
//
// The CRI has no pids limit; kubelet sets it on the pod's cgroup.
func WithResources(r *runtimeapi.LinuxContainerResources, h Host) oci.SpecOpts {
	return must(resourcesOpt(r, h))
}

func resourcesOpt(r *runtimeapi.LinuxContainerResources, h Host) (oci.SpecOpts, error) {
	if r == nil {
		return nop, nil
	}
	res, err := linuxResources(r, h)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		cur := s.Linux.Resources
		cur.CPU, cur.Memory, cur.HugepageLimits, cur.Unified = res.CPU, res.Memory, res.HugepageLimits, res.Unified
		return nil
	}, nil
}

// ResourcesUpdate is the resources to pass to a running container's task
// update for UpdateContainerResources: the same translation as
// WithResources, on this node.
func ResourcesUpdate(r *runtimeapi.LinuxContainerResources) (*specs.LinuxResources, error) {
	if r == nil {
		return nil, invalid(resourcesField, "is required")
	}
	return linuxResources(r, DetectHost())
}

func linuxResources(r *runtimeapi.LinuxContainerResources, h Host) (*specs.LinuxResources, error) {
	field := func(name string) string { return resourcesField + "." + name }
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{}}
	if err := CheckResources(resourcesField, r); err != nil {
		return nil, err
	}
	if r.CpuShares != 0 {
		res.CPU.Shares = ptr(uint64(r.CpuShares))
	}
	if r.CpuQuota != 0 {
		res.CPU.Quota = ptr(r.CpuQuota)
	}
	if r.CpuPeriod != 0 {
		res.CPU.Period = ptr(uint64(r.CpuPeriod))
	}
	res.CPU.Cpus, res.CPU.Mems = r.CpusetCpus, r.CpusetMems
	if r.MemoryLimitInBytes != 0 {
		res.Memory.Limit = ptr(r.MemoryLimitInBytes)
		if r.MemorySwapLimitInBytes == 0 && h.SwapAccounting {
			res.Memory.Swap = ptr(r.MemoryLimitInBytes)
		}
	}
	if r.MemorySwapLimitInBytes != 0 && h.SwapAccounting {
		res.Memory.Swap = ptr(r.MemorySwapLimitInBytes)
	}
	for i, l := range r.HugepageLimits {
		f := fmt.Sprintf("%s[%d]", field("hugepage_limits"), i)
		if !h.Hugetlb {
			if l.GetLimit() != 0 {
				return nil, invalid(f, "this node has no hugetlb cgroup controller to limit %s pages with", l.GetPageSize())
			}
			continue
		}
		res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: l.GetPageSize(), Limit: l.GetLimit()})
	}
	if len(r.Unified) > 0 {
		if !h.CgroupV2 {
			return nil, invalid(field("unified"), "needs cgroup v2; this node runs cgroup v1")
		}
		res.Unified = maps.Clone(r.Unified)
	}
	return res, nil
}

// CheckResources checks the values of r that need no facts about the
// node: no negative CPU or memory values (-1 means no limit for cpu_quota
// and memory_swap_limit_in_bytes), swap not below memory, cpuset lists,
// hugepage page sizes, oom_score_adj within -1000-1000. field names r in
// the errors (InvalidArgument); nil r is valid. WithResources and
// WithOOMScoreAdj make the same checks.
func CheckResources(field string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	f := func(name string) string { return field + "." + name }
	switch {
	case r.CpuShares < 0:
		return invalid(f("cpu_shares"), "%d is negative", r.CpuShares)
	case r.CpuPeriod < 0:
		return invalid(f("cpu_period"), "%d is negative", r.CpuPeriod)
	case r.CpuQuota < -1:
		return invalid(f("cpu_quota"), "%d is neither -1 (no limit) nor a quota", r.CpuQuota)
	case r.MemoryLimitInBytes < 0:
		return invalid(f("memory_limit_in_bytes"), "%d is negative", r.MemoryLimitInBytes)
	case r.MemorySwapLimitInBytes < -1:
		return invalid(f("memory_swap_limit_in_bytes"), "%d is neither -1 (unlimited) nor a limit", r.MemorySwapLimitInBytes)
	case r.MemorySwapLimitInBytes > 0 && r.MemoryLimitInBytes > 0 && r.MemorySwapLimitInBytes < r.MemoryLimitInBytes:
		return invalid(f("memory_swap_limit_in_bytes"), "%d is below memory_limit_in_bytes %d (it counts memory and swap together)",
			r.MemorySwapLimitInBytes, r.MemoryLimitInBytes)
	case r.OomScoreAdj < -1000 || r.OomScoreAdj > 1000:
		return invalid(f("oom_score_adj"), "%d is out of range -1000-1000", r.OomScoreAdj)
	}
	if err := validateCPUList(f("cpuset_cpus"), r.CpusetCpus); err != nil {
		return err
	}
	if err := validateCPUList(f("cpuset_mems"), r.CpusetMems); err != nil {
		return err
	}
	for i, l := range r.HugepageLimits {
		if !hugepageSize.MatchString(l.GetPageSize()) {
			return invalid(fmt.Sprintf("%s[%d].page_size", f("hugepage_limits"), i), "%q is not a page size such as 2MB", l.GetPageSize())
		}
	}
	return nil
}

// validateCPUList checks a cpuset list such as "0-3,7".
func validateCPUList(field, list string) error {
	if list == "" {
		return nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return invalid(field, "%q is not a list such as 0-3,7", list)
		}
	}
	return nil
}

// WithOOMScoreAdj sets the process's oom_score_adj to the CRI's, raised
// to what this node's runtime may set (oomscore.Clamp: without
// CAP_SYS_RESOURCE nothing below its own). Nil resources leave it unset.
func WithOOMScoreAdj(r *runtimeapi.LinuxContainerResources) oci.SpecOpts {
	return must(oomScoreAdjOpt(r))
}

func oomScoreAdjOpt(r *runtimeapi.LinuxContainerResources) (oci.SpecOpts, error) {
	if r == nil {
		return nop, nil
	}
	adj := r.GetOomScoreAdj()
	if adj < -1000 || adj > 1000 {
		return nil, invalid(resourcesField+".oom_score_adj", "%d is out of range -1000-1000", adj)
	}
	v := oomscore.Clamp(int(adj))
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.OOMScoreAdj = &v
		return nil
	}, nil
}
