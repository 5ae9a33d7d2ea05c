package container

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestAdjustedResources(t *testing.T) {
	limit, shares := int64(64<<20), uint64(256)
	cri := &runtimeapi.LinuxContainerResources{CpuShares: 1024, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 5}
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: new(uint64(1024))}, Memory: &specs.LinuxMemory{Limit: new(int64(128 << 20))},
	}}}
	before := specResources(s)
	if got := adjustedResources(cri, before, specResources(s)); got != cri {
		t.Errorf("unchanged resources gave %v, want the CRI ones", got)
	}
	s.Linux.Resources.CPU.Shares = &shares
	s.Linux.Resources.Memory.Limit = &limit
	s.Linux.Resources.CPU.Cpus = "0-1"
	if *before.CPU.Shares != 1024 {
		t.Fatal("specResources shares the spec's CPU")
	}
	got := adjustedResources(cri, before, specResources(s))
	want := &runtimeapi.LinuxContainerResources{CpuShares: 256, MemoryLimitInBytes: 64 << 20, CpusetCpus: "0-1", OomScoreAdj: 5}
	if !proto.Equal(got, want) {
		t.Errorf("adjusted = %v, want %v", got, want)
	}
	if cri.CpuShares != 1024 {
		t.Error("the CRI resources were changed in place")
	}
}
