package container

import (
	"maps"
	"reflect"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// specResources is a deep copy of s's Linux resources, nil when it has
// none: what to compare after NRI plugins adjusted s.
func specResources(s *specs.Spec) *specs.LinuxResources {
	if s.Linux == nil || s.Linux.Resources == nil {
		return nil
	}
	r := *s.Linux.Resources
	if r.CPU != nil {
		cpu := *r.CPU
		r.CPU = &cpu
	}
	if r.Memory != nil {
		mem := *r.Memory
		r.Memory = &mem
	}
	r.HugepageLimits = append([]specs.LinuxHugepageLimit(nil), r.HugepageLimits...)
	r.Unified = maps.Clone(r.Unified)
	return &r
}

// adjustedResources is cri with what plugins changed in the spec's
// resources (before → after) laid over it, so ContainerStatus reports what
// the container runs with. Unchanged resources return cri itself.
func adjustedResources(cri *runtimeapi.LinuxContainerResources, before, after *specs.LinuxResources) *runtimeapi.LinuxContainerResources {
	if after == nil || reflect.DeepEqual(before, after) {
		return cri
	}
	out := &runtimeapi.LinuxContainerResources{}
	if cri != nil {
		out = proto.Clone(cri).(*runtimeapi.LinuxContainerResources)
	}
	if c := after.CPU; c != nil {
		if c.Period != nil {
			out.CpuPeriod = int64(*c.Period)
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		if c.Shares != nil {
			out.CpuShares = int64(*c.Shares)
		}
		out.CpusetCpus, out.CpusetMems = c.Cpus, c.Mems
	}
	if m := after.Memory; m != nil {
		if m.Limit != nil {
			out.MemoryLimitInBytes = *m.Limit
		}
		if m.Swap != nil {
			out.MemorySwapLimitInBytes = *m.Swap
		}
	}
	if len(after.HugepageLimits) > 0 {
		out.HugepageLimits = nil
		for _, h := range after.HugepageLimits {
			out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.Pagesize, Limit: h.Limit})
		}
	}
	if len(after.Unified) > 0 {
		out.Unified = maps.Clone(after.Unified)
	}
	return out
}
