package spec

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slipway-dev/slipway/runtime/oomscore"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCgroupsPath(t *testing.T) {
	for _, tc := range []struct{ driver, parent, want, err string }{
		{driver: "cgroupfs", parent: "/kubepods/besteffort/pod1", want: "/kubepods/besteffort/pod1/c1"},
		{driver: "", parent: "/kubepods", want: "/kubepods/c1"},
		{driver: "cgroupfs", parent: "", want: ""},
		{driver: "systemd", parent: "kubepods-besteffort-pod1.slice", want: "kubepods-besteffort-pod1.slice:cri-slipway:c1"},
		{driver: "systemd", parent: "", want: "system.slice:cri-slipway:c1"},
		{driver: "cgroupv3", err: `cgroup driver "cgroupv3" is neither cgroupfs nor systemd`},
	} {
		got, err := CgroupsPath(tc.driver, tc.parent, "c1")
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("CgroupsPath(%q, %q) = %q, %v; want %q, %q", tc.driver, tc.parent, got, err, tc.want, tc.err)
		}
	}
}

func TestWithResources(t *testing.T) {
	v1 := Host{SwapAccounting: true}
	v2 := Host{CgroupV2: true, SwapAccounting: true, Hugetlb: true}
	const mi = 1 << 20
	for _, tc := range []struct {
		name string
		r    *runtimeapi.LinuxContainerResources
		host Host
		want string // JSON of the CPU, Memory, HugepageLimits and Unified parts
		err  string
	}{
		{name: "nil changes nothing", host: v1, want: `{}`},
		{
			name: "cpu",
			r:    &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0-1", CpusetMems: "0"},
			host: v1, want: `{"memory":{},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"}}`,
		},
		{
			name: "memory limit without swap",
			r:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 * mi},
			host: v1, want: `{"memory":{"limit":67108864,"swap":67108864},"cpu":{}}`,
		},
		{
			name: "memory and swap limits",
			r:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 * mi, MemorySwapLimitInBytes: 128 * mi},
			host: v2, want: `{"memory":{"limit":67108864,"swap":134217728},"cpu":{}}`,
		},
		{
			name: "no swap accounting",
			r:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 * mi, MemorySwapLimitInBytes: 128 * mi},
			host: Host{}, want: `{"memory":{"limit":67108864},"cpu":{}}`,
		},
		{
			name: "swap below memory",
			r:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 * mi, MemorySwapLimitInBytes: 32 * mi},
			host: v1, err: "linux.resources.memory_swap_limit_in_bytes: 33554432 is below memory_limit_in_bytes 67108864",
		},
		{
			name: "hugepages",
			r:    &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 * mi}, {PageSize: "1GB"}}},
			host: v2, want: `{"memory":{},"cpu":{},"hugepageLimits":[{"pageSize":"2MB","limit":4194304},{"pageSize":"1GB","limit":0}]}`,
		},
		{
			name: "zero hugepage limits without a controller are dropped",
			r:    &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}}},
			host: v1, want: `{"memory":{},"cpu":{}}`,
		},
		{
			name: "a hugepage limit without a controller",
			r:    &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB", Limit: 1 << 30}}},
			host: v1, err: "linux.resources.hugepage_limits[1]: this node has no hugetlb cgroup controller to limit 1GB pages with",
		},
		{
			name: "bad page size",
			r:    &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "huge"}}},
			host: v2, err: `hugepage_limits[0].page_size: "huge" is not a page size`,
		},
		{
			name: "unified on v2",
			r:    &runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1000000"}},
			host: v2, want: `{"memory":{},"cpu":{},"unified":{"memory.high":"1000000"}}`,
		},
		{
			name: "unified on v1",
			r:    &runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1000000"}},
			host: v1, err: "linux.resources.unified: needs cgroup v2; this node runs cgroup v1",
		},
		{name: "negative shares", r: &runtimeapi.LinuxContainerResources{CpuShares: -2}, host: v1, err: "linux.resources.cpu_shares: -2 is negative"},
		{name: "unlimited quota", r: &runtimeapi.LinuxContainerResources{CpuQuota: -1}, host: v1, want: `{"memory":{},"cpu":{"quota":-1}}`},
		{name: "bad quota", r: &runtimeapi.LinuxContainerResources{CpuQuota: -5}, host: v1, err: "cpu_quota: -5 is neither"},
		{name: "bad cpuset", r: &runtimeapi.LinuxContainerResources{CpusetCpus: "0-x"}, host: v1, err: `linux.resources.cpuset_cpus: "0-x" is not a list`},
		{name: "backwards cpuset", r: &runtimeapi.LinuxContainerResources{CpusetMems: "3-1"}, host: v1, err: `cpuset_mems: "3-1" is not a list`},
		{name: "negative memory", r: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}, host: v1, err: "memory_limit_in_bytes: -1 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			devices := s.Linux.Resources.Devices
			err := apply(s, WithResources(tc.r, tc.host))
			wantErr(t, err, tc.err)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			r := s.Linux.Resources
			if len(r.Devices) != len(devices) {
				t.Errorf("device rules changed: %v", r.Devices)
			}
			got, _ := json.Marshal(specs.LinuxResources{CPU: r.CPU, Memory: r.Memory, HugepageLimits: r.HugepageLimits, Unified: r.Unified})
			if string(got) != tc.want {
				t.Errorf("resources %s, want %s", got, tc.want)
			}
		})
	}
}

func TestResourcesUpdate(t *testing.T) {
	if _, err := ResourcesUpdate(nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("nil resources: %v, want InvalidArgument", err)
	}
	r, err := ResourcesUpdate(&runtimeapi.LinuxContainerResources{CpuShares: 256, MemoryLimitInBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if *r.CPU.Shares != 256 || *r.Memory.Limit != 1<<30 || r.Devices != nil {
		t.Errorf("update %+v %+v", r.CPU, r.Memory)
	}
	if h := DetectHost(); h.SwapAccounting && (r.Memory.Swap == nil || *r.Memory.Swap != 1<<30) {
		t.Errorf("swap %v, want the memory limit", r.Memory.Swap)
	}
}

func TestWithOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *runtimeapi.LinuxContainerResources
		want *int
		err  string
	}{
		{name: "nil leaves it unset"},
		{name: "positive", r: &runtimeapi.LinuxContainerResources{OomScoreAdj: 500}, want: ptr(500)},
		{name: "negative is clamped", r: &runtimeapi.LinuxContainerResources{OomScoreAdj: -998}, want: ptr(oomscore.Clamp(-998))},
		{name: "out of range", r: &runtimeapi.LinuxContainerResources{OomScoreAdj: 1001}, err: "linux.resources.oom_score_adj: 1001 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			err := apply(s, WithOOMScoreAdj(tc.r))
			wantErr(t, err, tc.err)
			if err != nil {
				return
			}
			got := s.Process.OOMScoreAdj
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("oom_score_adj %v, want %v", got, tc.want)
			}
		})
	}
}
